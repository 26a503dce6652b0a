//! `#[xray_handler]`: validate the handler's signature, then expand.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::{spanned::Spanned, FnArg, Ident, ItemFn, ReturnType};

use crate::args::{self, Args};
use crate::ctxt::Ctxt;
use crate::shared::{self, last_segment_is};

/// Entry point: on error the user's function is still emitted, so one mistake gives one
/// error and an IDE keeps completing.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    let args = args::parse(&mut cx, "#[xray_handler]", attr);
    let Ok(function) = syn::parse2::<ItemFn>(item.clone()) else {
        {
            cx.error_spanned_by(
                shared::first_tokens(&item),
                "#[xray_handler] goes on the Lambda handler: `async fn handler(event: LambdaEvent<T>) -> Result<R, E>`",
            );
            return shared::with_errors(cx, item);
        }
    };
    validate(&mut cx, &function);
    match cx.check() {
        Ok(()) => generate(&args, function),
        Err(errors) => {
            let mut out = errors.to_compile_error();
            out.extend(function.into_token_stream());
            out
        }
    }
}

fn validate(cx: &mut Ctxt, function: &ItemFn) {
    let sig = &function.sig;
    shared::check_attribute_mix(cx, "xray_handler", &function.attrs);
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            "the Lambda handler must be `async`: write `async fn` here",
        );
    }
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(
            constness,
            "a Lambda handler cannot be `const`: remove `const`",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "a Lambda handler cannot have an ABI: remove it");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(
            variadic,
            "a Lambda handler takes one `LambdaEvent<T>`: remove `...`",
        );
    }
    let mut events = 0;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => cx.error_spanned_by(
                receiver,
                "a Lambda handler is a free function, not a method: remove `self` and pass the state as an argument (`service_fn(move |event| handler(state.clone(), event))`)",
            ),
            FnArg::Typed(arg) if last_segment_is(&arg.ty, "LambdaEvent") => {
                events += 1;
                if events > 1 {
                    cx.error_spanned_by(
                        &arg.ty,
                        "a Lambda handler takes one `LambdaEvent<T>`: remove this one",
                    );
                }
            }
            FnArg::Typed(_) => {}
        }
    }
    if events == 0 && !sig.inputs.iter().any(|i| matches!(i, FnArg::Receiver(_))) {
        let message = "the handler must take the event as `event: LambdaEvent<T>` (from lambda_runtime): it carries the invocation's trace header";
        match sig.inputs.last() {
            Some(last) => cx.error_spanned_by(last, message),
            None => cx.error_at(sig.paren_token.span.join(), message),
        }
    }
    match &sig.output {
        ReturnType::Default => cx.error_spanned_by(
            &sig.ident,
            "the handler must return `Result<R, E>` (lambda_runtime needs it): add `-> Result<Response, Error>`",
        ),
        ReturnType::Type(_, ty) => {
            if !last_segment_is(ty, "Result") {
                cx.error_spanned_by(
                    ty,
                    "the handler must return `Result<R, E>`: wrap the value, e.g. `-> Result<Response, lambda_runtime::Error>`",
                );
            }
        }
    }
}

fn generate(args: &Args, mut function: ItemFn) -> TokenStream {
    let krate = args.krate();
    let name = args::name_or(args, &function.sig.ident);
    // Hygienic locals: a user binding of the same name neither sees nor shadows them.
    let event = Ident::new("xray_event", Span::mixed_site());
    let invocation = Ident::new("xray_invocation", Span::mixed_site());
    let output = Ident::new("xray_output", Span::mixed_site());
    let error = Ident::new("xray_error", Span::mixed_site());

    let Some(arg) = function
        .sig
        .inputs
        .iter_mut()
        .find_map(|input| match input {
            FnArg::Typed(arg) if last_segment_is(&arg.ty, "LambdaEvent") => Some(arg),
            _ => None,
        })
    else {
        unreachable!("validated: one LambdaEvent argument");
    };
    let user_pattern = std::mem::replace(
        &mut *arg.pat,
        syn::Pat::Ident(syn::PatIdent {
            attrs: Vec::new(),
            by_ref: None,
            mutability: None,
            ident: event.clone(),
            subpat: None,
        }),
    );
    let event_ty = &arg.ty;
    let body = &function.block;
    let ReturnType::Type(_, return_ty) = &function.sig.output else {
        unreachable!("validated: returns Result");
    };

    // The user's block keeps its spans, so rustc's errors in it land on the user's code.
    // The never-taken `return` of a value of the declared type fixes the block's output type
    // first, so `Err(Box::new(e))` and `?` coerce as they do in the plain function (the
    // trick tracing-attributes uses).
    let fix_output_type = shared::fix_output_type(return_ty);
    let user_future = quote_spanned! {body.span()=>
        async move {
            #fix_output_type
            let #user_pattern: #event_ty = #event;
            #body
        }
    };
    let record = if shared::contains_impl_trait(return_ty) {
        // The error type cannot be named: describe it through `Debug`.
        quote! {
            if let ::core::result::Result::Err(#error) = &#output {
                #invocation.record_error(#krate::__private::Exception::from_debug(#error));
            }
        }
    } else {
        quote! {
            if let ::core::result::Result::Err(#error) = &#output {
                #[allow(unused_imports)]
                use #krate::__private::{ViaDebug as _, ViaDeref as _, ViaError as _};
                #invocation.record_error((&&&#krate::__private::Probe(#error)).xray_exception());
            }
        }
    };
    let ascription = if shared::contains_impl_trait(return_ty) {
        quote!()
    } else {
        quote!(: #return_ty)
    };
    let new_body = quote! {
        {
            let mut #invocation = #krate::__private::Invocation::start(#name, &#event.context);
            let #output #ascription = #invocation.run(#user_future).await;
            #record
            #invocation.finish().await;
            #output
        }
    };
    function.block = syn::parse2(new_body).expect("generated block parses");
    function.into_token_stream()
}
