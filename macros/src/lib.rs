//! Attribute macros of [xray-lambda](https://docs.rs/xray-lambda). Use them through the
//! `xray-lambda` crate, which re-exports them and documents them with examples.
//!
//! Each macro is thin: parse the arguments, validate the item (collecting every error, each
//! pointing at the offending token and naming the fix), expand into calls to
//! `xray_lambda::__private`. On error the item is emitted unchanged beside the errors.

mod annotate;
mod args;
mod aws;
mod ctxt;
mod handler;
mod shared;

use proc_macro::TokenStream;

/// Traces a Lambda handler; see the `xray-lambda` crate docs.
#[proc_macro_attribute]
pub fn xray_handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand(attr.into(), item.into()).into()
}

/// Traces a function that calls the AWS SDK; see the `xray-lambda` crate docs.
#[proc_macro_attribute]
pub fn xray_aws(attr: TokenStream, item: TokenStream) -> TokenStream {
    aws::expand(attr.into(), item.into()).into()
}

/// Adds an annotation (indexed, searchable) to the innermost traced subsegment; see the
/// `xray-lambda` crate docs.
#[proc_macro]
pub fn annotate(tokens: TokenStream) -> TokenStream {
    annotate::expand(annotate::Kind::Annotation, tokens.into()).into()
}

/// Adds metadata (any serializable value, not indexed) to the innermost traced subsegment; see
/// the `xray-lambda` crate docs.
#[proc_macro]
pub fn metadata(tokens: TokenStream) -> TokenStream {
    annotate::expand(annotate::Kind::Metadata, tokens.into()).into()
}
