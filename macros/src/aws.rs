//! `#[xray_aws]`: a subsegment for a function that calls the AWS SDK; the SDK calls inside it
//! become `aws` subsegments under it (recorded by `xray_lambda::aws::XrayInterceptor`).

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::{spanned::Spanned, Ident, ItemFn, ReturnType};

use crate::args;
use crate::ctxt::Ctxt;
use crate::shared;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    let args = args::parse(&mut cx, "#[xray_aws]", attr);
    let Ok(mut function) = syn::parse2::<ItemFn>(item.clone()) else {
        cx.error_spanned_by(
            shared::first_tokens(&item),
            "#[xray_aws] goes on an `async fn` that calls the AWS SDK",
        );
        return shared::with_errors(cx, item);
    };
    shared::check_attribute_mix(&mut cx, "xray_aws", &function.attrs);
    if function.sig.asyncness.is_none() {
        cx.error_spanned_by(
            function.sig.fn_token,
            "#[xray_aws] wraps an async function (AWS SDK calls are async): write `async fn` here",
        );
    }
    if let Err(errors) = cx.check() {
        let mut out = errors.to_compile_error();
        out.extend(function.into_token_stream());
        return out;
    }
    let krate = args.krate();
    let name = args::name_or(&args, &function.sig.ident);
    let span = Ident::new("xray_span", Span::mixed_site());
    let fix_output_type = match &function.sig.output {
        ReturnType::Type(_, ty) => shared::fix_output_type(ty),
        ReturnType::Default => quote!(),
    };
    let body = &function.block;
    let future = quote_spanned! {body.span()=>
        async move {
            #fix_output_type
            #body
        }
    };
    let new_body = quote! {
        {
            let #span = #krate::__private::function_span(#name);
            #krate::__private::Instrument::instrument(#future, #span).await
        }
    };
    function.block = syn::parse2(new_body).expect("generated block parses");
    function.into_token_stream()
}
