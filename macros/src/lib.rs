//! Attribute macros of [xray-lambda](https://docs.rs/xray-lambda). Use them through the
//! `xray-lambda` crate, which re-exports them and documents them with examples.
//!
//! Each macro is thin: parse the arguments, validate the item (collecting every error, each
//! pointing at the offending token and naming the fix), expand into calls to
//! `xray_lambda::__private`. On error the item is emitted unchanged beside the errors.

mod annotate;
mod args;
mod ast;
mod ctxt;
mod expand;
mod shared;
mod valid;

use proc_macro::TokenStream;
use quote::ToTokens;
use syn::ItemFn;

use crate::ctxt::Ctxt;

/// Traces a Lambda handler: one subsegment per invocation, under the segment Lambda wrote.
///
/// Goes on an `async fn` that takes one `LambdaEvent<T>` (and any other arguments, such as
/// shared clients) and returns `Result<R, E>`:
///
/// ```rust,ignore
/// #[xray_lambda::xray_handler]
/// async fn handler(client: Client, event: LambdaEvent<Request>) -> Result<Response, Error> { ... }
/// ```
///
/// | argument | meaning | default |
/// |---|---|---|
/// | `name = "..."` | the subsegment's name: 1–200 of letters, digits, spaces and `_ . : / % & # = + \ - @` (checked at compile time) | the function's name |
/// | `crate = "path"` | where `xray_lambda` is, when re-exported or renamed | `::xray_lambda` |
/// | `capture_response = true\|false` | the response as metadata `<name> response` (Powertools' `capture_response`; `LambdaEvent` handlers) | `Builder::capture_response`, `POWERTOOLS_TRACER_CAPTURE_RESPONSE`: off |
/// | `capture_error = true\|false` | the error as metadata `<name> error` too, beside the `cause` | `Builder::capture_error`, `POWERTOOLS_TRACER_CAPTURE_ERROR`: on |
///
/// What it expands to (names simplified; the real locals are hygienic, and `describe` and
/// `batch_failures` stand for autoref probes that pick the best description of your types):
///
/// ```text
/// async fn handler(client: Client, xray_event: LambdaEvent<Request>) -> Result<Response, Error> {
///     // The event's context is borrowed in a block of its own, so that the handler's future
///     // holds the event once; the header comes from `context.xray_trace_id` (else
///     // `_X_AMZN_TRACE_ID`); `Sampled=0` or tracing off: nothing to record.
///     let (mut invocation, future) = {
///         let event = xray_event;
///         (
///             xray_lambda::__private::Invocation::start("handler", &event.context),
///             // Your body, built in its box (the event is not moved on the way).
///             Box::into_pin(Box::write(Box::new_uninit(), async move {
///                 let _ = &event;
///                 /* your body, unchanged */
///             })),
///         )
///     };
///     // Runs in the handler span, entered on each poll; a panic is recorded and sent, then
///     // resumed for lambda_runtime to report. With nothing to record, it runs as it is.
///     let output: Result<Response, Error> =
///         xray_lambda::__private::run_boxed(&mut invocation, future).await;
///     if invocation.is_recorded() {
///         // `capture_response` / `capture_error` as the attribute sets them (if it does), then
///         // the response as metadata, where captured (never with `capture_response = false`).
///         xray_lambda::__private::capture(&mut invocation, Some(true), None);
///         if xray_lambda::__private::captures_response(&invocation) {
///             if let Ok(ok) = &output {
///                 xray_lambda::__private::capture_response(&invocation, as_json(ok));
///             }
///         }
///         // An `Err`: a fault with its cause (type, message, `source()` chain), and its
///         // metadata where errors are captured.
///         if let Err(error) = &output { invocation.record_error(describe(error)); }
///         // A batch response: `FailedRecords`, and the failed records' subsegments marked.
///         xray_lambda::__private::record_batch_failures(&mut invocation, batch_failures(&output));
///         // Closes the subsegment and sends the documents before the result returns.
///         invocation.finish().await;
///     }
///     output
/// }
/// ```
///
/// # HTTP functions (`lambda_http`, feature `lambda-http`)
///
/// On a handler that takes `request: Request` instead of the event, the invocation starts
/// from the Lambda context `lambda_http` put on the request, the handler subsegment gets
/// X-Ray's `http` object (method, URL without its query string, user agent, client IP) and the
/// `HttpMethod` and `HttpRoute` annotations, and the request's `x-amzn-trace-id` is set to the
/// handler subsegment's header before the body runs:
///
/// ```rust,ignore
/// #[xray_lambda::xray_handler]
/// async fn handler(request: Request) -> Result<impl IntoResponse, Error> { ... }
/// ```
///
/// After the body, an `impl IntoResponse` is converted as `lambda_http` would convert it and
/// handed on converted (`Invocation::respond`); a named type (`Response<B>`, `String`,
/// `(StatusCode, Value)`, ...) is read where it is. Either way the status (also the
/// `HttpStatus` annotation) and length complete the `http` object, and 4xx marks the
/// subsegment an error, 429 a throttle, 5xx a fault.
///
/// Misuse is a compile error at the offending token that names the fix: not `async`, not a
/// function, a `self` receiver, no or two `LambdaEvent` or `Request` arguments, both kinds
/// together, a return type that is not `Result`, unknown or duplicate arguments, a bad name,
/// and combining it with `#[xray_aws]`, `#[instrument]` or itself.
#[proc_macro_attribute]
pub fn xray_handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    handler(attr.into(), item.into()).into()
}

/// `#[xray_handler]`: parse, validate, expand; on error, the errors and the item unchanged.
fn handler(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let mut cx = Ctxt::default();
    let args = args::parse(&mut cx, "xray_handler", attr);
    let Ok(function) = syn::parse2::<ItemFn>(item.clone()) else {
        cx.error_spanned_by(
            shared::first_tokens(&item),
            "#[xray_handler] goes on the Lambda handler: `async fn handler(event: LambdaEvent<T>) -> Result<R, E>`",
        );
        return shared::with_errors(cx, item);
    };
    let handler = valid::handler(&mut cx, &function);
    if let (Some(handler), Some(capture)) = (&handler, &args.capture_response) {
        if capture.value && matches!(handler.kind, ast::HandlerKind::Http { .. }) {
            cx.error_spanned_by(
                capture,
                "`capture_response` applies to `LambdaEvent` handlers: an HTTP function's response is recorded as X-Ray's `http` object (status, length), its body never; remove it",
            );
        }
    }
    match handler {
        Some(handler) if !cx.has_errors() => {
            let expanded = expand::handler(&args, &handler);
            if !matches!(handler.kind, ast::HandlerKind::Http { .. }) {
                return expanded;
            }
            // Only the runtime knows whether its `lambda-http` feature is on: its macro keeps
            // the expansion, or (the feature off) gives one error naming the feature and the
            // handler as written, instead of errors about items the feature gates.
            let krate = args.krate();
            quote::quote! {
                #krate::__private::http_handler! { { #expanded } { #function } }
            }
        }
        _ => shared::with_errors(cx, function.into_token_stream()),
    }
}

/// Traces a function that calls the AWS SDK: a subsegment named after the function, with one
/// `aws` subsegment per SDK call inside it (recorded by `xray_lambda::aws::XrayInterceptor`,
/// registered once on the client).
///
/// ```rust,ignore
/// #[xray_lambda::xray_aws]
/// async fn ddb_get(client: &aws_sdk_dynamodb::Client, id: &str) -> Result<Option<Item>, Error> {
///     let output = client.get_item().table_name("orders").key("id", AttributeValue::S(id.into())).send().await?;
///     Ok(output.item)
/// }
/// ```
///
/// | argument | meaning | default |
/// |---|---|---|
/// | `name = "..."` | the subsegment's name (X-Ray's rules, checked at compile time) | the function's name |
/// | `crate = "path"` | where `xray_lambda` is, when re-exported or renamed | `::xray_lambda` |
///
/// Works on methods (`&self`) too. What it stands for:
///
/// ```text
/// async fn ddb_get(client: &Client, id: &str) -> Result<Option<Item>, Error> {
///     let span = xray_lambda::__private::function_span("ddb_get");
///     xray_lambda::__private::Instrument::instrument(async move { /* your body */ }, span).await
/// }
/// ```
///
/// No argument, result or value of the function is recorded.
#[proc_macro_attribute]
pub fn xray_aws(attr: TokenStream, item: TokenStream) -> TokenStream {
    aws(attr.into(), item.into()).into()
}

/// `#[xray_aws]`: parse, validate, expand; on error, the errors and the item unchanged.
fn aws(attr: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let mut cx = Ctxt::default();
    let args = args::parse(&mut cx, "xray_aws", attr);
    let Ok(function) = syn::parse2::<ItemFn>(item.clone()) else {
        match syn::parse2::<syn::TraitItemFn>(item.clone()) {
            // A trait's declaration: there is no body to trace.
            Ok(declaration) if declaration.default.is_none() => cx.error_spanned_by(
                &declaration.sig,
                "#[xray_aws] traces a body, and a trait's declaration has none: put the attribute on the method in each `impl` block",
            ),
            _ => cx.error_spanned_by(
                shared::first_tokens(&item),
                "#[xray_aws] goes on an `async fn` that calls the AWS SDK",
            ),
        }
        return shared::with_errors(cx, item);
    };
    let aws = valid::aws(&mut cx, &function);
    if cx.has_errors() {
        return shared::with_errors(cx, function.into_token_stream());
    }
    expand::aws(&args, &aws)
}

/// Adds an annotation (indexed, searchable in X-Ray) to the innermost traced subsegment.
///
/// ```rust,ignore
/// xray_lambda::annotate!("user_id", &user.id);   // key checked at compile time
/// xray_lambda::annotate!("items", order.len());   // numbers and bools stay numbers and bools
/// xray_lambda::annotate!(key, value);             // a key made at run time: checked then
/// xray_lambda::annotate!(crate = my_xray; "user_id", id); // a re-exported xray_lambda
/// ```
///
/// A literal key must be 1–500 characters of `A-Z a-z 0-9 _`, or the build fails naming the
/// key to write; a value must be a string, number or bool, or the build fails at the value. A
/// run-time key X-Ray would not index is rewritten (other characters become `_`) and recorded,
/// with one warning per key. String values over 1,000 characters are cut with `…`.
#[proc_macro]
pub fn annotate(tokens: TokenStream) -> TokenStream {
    annotate::expand(annotate::Kind::Annotation, tokens.into()).into()
}

/// Adds metadata (any `serde::Serialize` value, not indexed) to the innermost traced
/// subsegment, in the `default` namespace.
///
/// ```rust,ignore
/// xray_lambda::metadata!("order", &order);
/// ```
///
/// Values over 16 KiB are cut, with a marker saying how long they were.
#[proc_macro]
pub fn metadata(tokens: TokenStream) -> TokenStream {
    annotate::expand(annotate::Kind::Metadata, tokens.into()).into()
}
