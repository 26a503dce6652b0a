//! Pieces both attributes use.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Ident, Type};

use crate::ctxt::Ctxt;

/// `item` after the errors collected in `cx`, if any: on error the user's item is still
/// emitted, so one mistake gives one error and an IDE keeps completing.
pub(crate) fn with_errors(cx: Ctxt, item: TokenStream) -> TokenStream {
    let mut out = cx
        .check()
        .err()
        .map(|e| e.to_compile_error())
        .unwrap_or_default();
    out.extend(item);
    out
}

/// The first few tokens of an item (`struct Foo`, `impl X`): where "not a function" points.
pub(crate) fn first_tokens(item: &TokenStream) -> TokenStream {
    item.clone()
        .into_iter()
        .skip_while(|t| matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
        .skip_while(|t| matches!(t, proc_macro2::TokenTree::Group(_)))
        .take(2)
        .collect()
}

/// A never-taken `return` of a value of the declared type, placed first in an async block so
/// that the block's output type is the declared one and `Err(Box::new(e))` and `?` coerce as
/// they do in the plain function (the trick tracing-attributes uses). Only for return types
/// without `impl Trait`, which cannot be named in a `let`: the caller checks.
pub(crate) fn fix_output_type(return_ty: &Type) -> TokenStream {
    let fake = Ident::new("xray_fake_return", Span::mixed_site());
    quote! {
        #[allow(
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::needless_return
        )]
        if false {
            let #fake: #return_ty = loop {};
            return #fake;
        }
    }
}

/// Errors for attributes that must not be combined with `this` on one function.
pub(crate) fn check_attribute_mix(cx: &mut Ctxt, this: &str, attrs: &[syn::Attribute]) {
    for attr in attrs {
        let last = attr.path().segments.last().map(|s| s.ident.to_string());
        match (this, last.as_deref()) {
            (_, Some(name)) if name == this => cx.error_spanned_by(
                attr,
                format!("#[{this}] is applied twice: remove this one"),
            ),
            ("xray_handler", Some("xray_aws")) | ("xray_aws", Some("xray_handler")) => cx.error_spanned_by(
                attr,
                "#[xray_aws] and #[xray_handler] conflict: the handler already has its subsegment; put #[xray_aws] on the helper that calls the AWS SDK",
            ),
            (_, Some("instrument")) => cx.error_spanned_by(
                attr,
                format!("#[{this}] already opens a span for this function: remove #[instrument]"),
            ),
            _ => {}
        }
    }
}
