//! Expansion: the output of each attribute, built from the typed views of `ast.rs` alone.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::punctuated::{Pair, Punctuated};
use syn::{parse_quote, spanned::Spanned, FnArg, Ident, ItemFn, Pat, PatIdent, PatType, Token};

use crate::args::{self, Args};
use crate::ast::{Aws, Handler, HandlerKind};
use crate::shared;

/// `#[xray_handler]`: the handler's body runs inside an `Invocation`, which opens the
/// subsegment from the event's context, records an `Err` and sends the documents.
pub(crate) fn handler(args: &Args, handler: &Handler<'_>) -> TokenStream {
    let krate = args.krate();
    let function = handler.function;
    let name = args::name_or(args, &function.sig.ident);
    let locals = Locals::new();
    let (invocation, output) = (&locals.invocation, &locals.output);
    let (fix_output_type, ascription, error_nameable) = output_typing(handler);
    let start = start_and_run(
        &krate,
        &name,
        handler,
        &locals,
        &fix_output_type,
        &ascription,
    );
    let record = record_error(&krate, invocation, output, !error_nameable);
    let capture = capture(&krate, args, handler, &locals);
    let record = quote!(#capture #record);
    let block = Box::new(handler_block(&krate, handler, &locals, &start, &record));
    let mut sig = function.sig.clone();
    sig.inputs = rename_event(handler, &locals.argument);
    let traced = ItemFn {
        attrs: function.attrs.clone(),
        vis: function.vis.clone(),
        sig,
        block,
    };
    traced.into_token_stream()
}

/// How the user's output is typed: the never-taken `return` that fixes it, the ascription of
/// the output local, and whether the error's type can be named (else it is described through
/// autoref specialisation).
fn output_typing(handler: &Handler<'_>) -> (TokenStream, TokenStream, bool) {
    let return_ty = handler.return_ty;
    match handler.nameable_error {
        _ if !handler.returns_impl_trait => (
            shared::fix_output_type(return_ty),
            quote!(: #return_ty),
            true,
        ),
        // `Result<impl IntoResponse, E>`: the error's type can still be named.
        Some(error_ty) => (
            quote!(),
            quote!(: ::core::result::Result<_, #error_ty>),
            true,
        ),
        None => (quote!(), quote!(), false),
    }
}

/// The handler's block: start and run, then (where recorded) the error, the batch response
/// or the HTTP response, and the finish.
fn handler_block(
    krate: &TokenStream,
    handler: &Handler<'_>,
    locals: &Locals,
    start: &TokenStream,
    record: &TokenStream,
) -> syn::Block {
    let (invocation, output) = (&locals.invocation, &locals.output);
    match handler.kind {
        HandlerKind::Event => {
            let batch = record_batch_failures(krate, invocation, output);
            parse_quote! {
                {
                    #start
                    // Only where it is recorded: an unrecorded invocation describes no error,
                    // reads no batch response and has nothing to send.
                    if #invocation.is_recorded() {
                        #record
                        #batch
                        #invocation.finish().await;
                    }
                    #output
                }
            }
        }
        HandlerKind::Http { ok_is_impl_trait } => {
            let (read, convert) = record_response(krate, invocation, output, ok_is_impl_trait);
            parse_quote! {
                {
                    #start
                    if #invocation.is_recorded() {
                        #record
                        #read
                    }
                    #convert
                    if #invocation.is_recorded() {
                        #invocation.finish().await;
                    }
                    #output
                }
            }
        }
    }
}

/// The expansion's own locals, hygienic: a user binding of the same name neither sees nor
/// shadows them.
struct Locals {
    /// The event, as the handler's argument.
    argument: Ident,
    /// The user's body, as a boxed future.
    future: Ident,
    invocation: Ident,
    output: Ident,
}

impl Locals {
    fn new() -> Self {
        let local = |name| Ident::new(name, Span::mixed_site());
        Locals {
            argument: local("xray_event"),
            future: local("xray_future"),
            invocation: local("xray_invocation"),
            output: local("xray_output"),
        }
    }
}

/// Starts the invocation from the event, then runs the user's body in it to `output`.
fn start_and_run(
    krate: &TokenStream,
    name: &impl ToTokens,
    handler: &Handler<'_>,
    locals: &Locals,
    fix_output_type: &TokenStream,
    ascription: &TokenStream,
) -> TokenStream {
    let Locals {
        argument,
        future,
        invocation,
        output,
    } = locals;
    // The event keeps the user's name where it is a plain binding: the handler's future then
    // captures it as it is, instead of moving it again into a binding of its own.
    let plain_event = plain_binding(&handler.event.pat);
    let event = plain_event.unwrap_or(argument);
    // An HTTP function's request gets its `x-amzn-trace-id` set before the body runs.
    let event_mut =
        matches!(handler.kind, HandlerKind::Http { .. }).then(|| Token![mut](Span::call_site()));
    let user_future = user_future(handler, event, plain_event.is_some(), fix_output_type);
    // The invocation starts from the event's context, borrowed in a block of its own: a local
    // once borrowed keeps its place in the handler's future across every `.await`, and the
    // event would be carried twice, moved with the future on every hand-over.
    let start = match handler.kind {
        HandlerKind::Event => quote!(#krate::__private::Invocation::start(#name, &#event.context)),
        HandlerKind::Http { .. } => {
            quote!(#krate::__private::Invocation::start_http(#name, &mut #event))
        }
    };
    quote! {
        let (mut #invocation, #future) = {
            #[allow(clippy::redundant_locals)]
            let #event_mut #event = #argument;
            (#start, #user_future)
        };
        let #output #ascription = #krate::__private::run_boxed(&mut #invocation, #future).await;
    }
}

/// The user's body as a future in its box, the event bound as the user wrote it.
fn user_future(
    handler: &Handler<'_>,
    event: &Ident,
    plain_event: bool,
    fix_output_type: &TokenStream,
) -> TokenStream {
    let user_pattern = &handler.event.pat;
    let event_ty = &handler.event.ty;
    let body = &handler.function.block;
    // The user's block keeps its spans, so rustc's errors in it land on the user's code; the
    // output type is fixed first, so `?` and `Err(Box::new(e))` coerce as in the plain function.
    // The body's statements, not its block: a block that is one expression would otherwise
    // be the braced tail of ours, which `unused_braces` flags in the user's crate.
    let statements = &body.stmts;
    let bind_event = if plain_event {
        // Captured whole, as the argument of a plain `async fn` lives to its end: without
        // this, the future would capture only the fields it uses and drop the others first.
        quote!(let _ = &#event;)
    } else {
        // `_event` (the user's word that it goes unused) is bound all the same: the value
        // lives to the end of the body, as the plain function's argument would.
        quote! {
            #[allow(clippy::no_effect_underscore_binding)]
            let #user_pattern: #event_ty = #event;
        }
    };
    let user_future = quote_spanned! {body.span()=>
        async move {
            #fix_output_type
            #bind_event
            #(#statements)*
        }
    };
    // Built in its box: `Box::new` would move the future, and the event it holds, on the way.
    quote! {
        ::std::boxed::Box::into_pin(::std::boxed::Box::write(
            ::std::boxed::Box::new_uninit(),
            #user_future,
        ))
    }
}

/// The event's pattern when it is a plain, immutable binding (`event`). A `mut event` is
/// bound inside the handler's future: rustc reads an assignment to a captured field there as
/// never read (`unused_assignments`), even where the future reads it.
fn plain_binding(pattern: &Pat) -> Option<&Ident> {
    match pattern {
        // `_event`: the user says it goes unused; the expansion reading it by that name would
        // trip `clippy::used_underscore_binding` in the user's crate. Bound as the user wrote
        // it inside the future instead.
        Pat::Ident(PatIdent {
            by_ref: None,
            mutability: None,
            subpat: None,
            ident,
            ..
        }) if !ident.to_string().starts_with('_') => Some(ident),
        _ => None,
    }
}

/// The handler's arguments, with the event's pattern replaced by the hygienic `argument`:
/// the invocation starts from the event's context before the user's pattern takes it apart.
fn rename_event(handler: &Handler<'_>, argument: &Ident) -> Punctuated<FnArg, Token![,]> {
    let renamed = PatType {
        pat: Box::new(Pat::Ident(PatIdent {
            attrs: Vec::new(),
            by_ref: None,
            mutability: None,
            ident: argument.clone(),
            subpat: None,
        })),
        ..handler.event.clone()
    };
    handler
        .function
        .sig
        .inputs
        .pairs()
        .enumerate()
        .map(|(index, pair)| {
            if index == handler.event_index {
                let (_, comma) = pair.into_tuple();
                Pair::new(FnArg::Typed(renamed.clone()), comma.copied())
            } else {
                pair.cloned()
            }
        })
        .collect()
}

/// Records a batch response's `batch_item_failures` (`SqsBatchResponse`, the streams'
/// responses, or JSON with `batchItemFailures`); any other output type records nothing.
fn record_batch_failures(krate: &TokenStream, invocation: &Ident, output: &Ident) -> TokenStream {
    let ok = Ident::new("xray_ok", Span::mixed_site());
    quote! {
        if let ::core::result::Result::Ok(#ok) = &#output {
            #[allow(unused_imports)]
            use #krate::__private::{ViaBatchResponse as _, ViaNotBatch as _};
            #krate::__private::record_batch_failures(
                &mut #invocation,
                (&&#krate::__private::BatchProbe(#ok)).xray_batch_failures(),
            );
        }
    }
}

/// Records an HTTP function's response on the invocation, as (what reads it, run only when the
/// invocation is recorded; what converts it, always run): an `impl IntoResponse` is converted
/// (as `lambda_http` would) and handed on converted; a named type is read where it is.
fn record_response(
    krate: &TokenStream,
    invocation: &Ident,
    output: &Ident,
    ok_is_impl_trait: bool,
) -> (TokenStream, TokenStream) {
    if ok_is_impl_trait {
        let convert = quote! {
            let #output = #invocation.respond(#output).await;
        };
        (TokenStream::new(), convert)
    } else {
        let response = Ident::new("xray_response", Span::mixed_site());
        let read = quote! {
            if let ::core::result::Result::Ok(#response) = &#output {
                #[allow(unused_imports)]
                use #krate::__private::{ViaAnything as _, ViaExact as _, ViaResponse as _};
                #krate::__private::record_response(
                    &mut #invocation,
                    (&&&#krate::__private::ResponseProbe(#response)).xray_response(),
                );
            }
        };
        (read, TokenStream::new())
    }
}

/// The attribute's `capture_response` / `capture_error`, where it sets them, then (an event
/// handler whose response may be captured) the response as metadata.
fn capture(
    krate: &TokenStream,
    args: &Args,
    handler: &Handler<'_>,
    locals: &Locals,
) -> TokenStream {
    let (invocation, output) = (&locals.invocation, &locals.output);
    let setting = |lit: &Option<syn::LitBool>| match lit {
        Some(b) => quote!(::core::option::Option::Some(#b)),
        None => quote!(::core::option::Option::None),
    };
    let settings = (args.capture_response.is_some() || args.capture_error.is_some()).then(|| {
        let (response, error) = (
            setting(&args.capture_response),
            setting(&args.capture_error),
        );
        quote!(#krate::__private::capture(&mut #invocation, #response, #error);)
    });
    let never = args.capture_response.as_ref().is_some_and(|b| !b.value);
    let response = (matches!(handler.kind, HandlerKind::Event) && !never).then(|| {
        let ok = Ident::new("xray_ok", Span::mixed_site());
        quote! {
            if #krate::__private::captures_response(&#invocation) {
                if let ::core::result::Result::Ok(#ok) = &#output {
                    #[allow(unused_imports)]
                    use #krate::__private::{ViaNotSerialize as _, ViaSerialize as _};
                    #krate::__private::capture_response(
                        &#invocation,
                        (&#krate::__private::CaptureProbe(#ok)).xray_json(),
                    );
                }
            }
        }
    });
    quote!(#settings #response)
}

/// Records an `Err` output on the invocation: as an exception with its type, message and
/// `source()` chain when the error type can be named, else through `Debug`.
fn record_error(
    krate: &TokenStream,
    invocation: &Ident,
    output: &Ident,
    error_is_opaque: bool,
) -> TokenStream {
    let error = Ident::new("xray_error", Span::mixed_site());
    if error_is_opaque {
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
    }
}

/// `#[xray_aws]`: the body runs as a future instrumented with the function's span.
pub(crate) fn aws(args: &Args, aws: &Aws<'_>) -> TokenStream {
    let krate = args.krate();
    let function = aws.function;
    let name = args::name_or(args, &function.sig.ident);
    let span = Ident::new("xray_span", Span::mixed_site());
    let fix_output_type = match aws.return_ty {
        Some(return_ty) if !aws.returns_impl_trait => shared::fix_output_type(return_ty),
        _ => quote!(),
    };
    let body = &function.block;
    // Statements, not the block: see `handler`.
    let statements = &body.stmts;
    let future = quote_spanned! {body.span()=>
        async move {
            #fix_output_type
            #(#statements)*
        }
    };
    let block = parse_quote! {
        {
            let #span = #krate::__private::function_span(#name);
            #krate::__private::Instrument::instrument(#future, #span).await
        }
    };
    let traced = ItemFn {
        block,
        ..function.clone()
    };
    traced.into_token_stream()
}
