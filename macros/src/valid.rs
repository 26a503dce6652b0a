//! Validation: every problem is pushed into the `Ctxt`, at the offending token and naming the
//! fix, so that all are reported together; what validation establishes comes back as a typed
//! view (`ast.rs`) for expansion.

use syn::{FnArg, ItemFn, PatType, ReturnType, Signature, Type};

use crate::ast::{self, Aws, Handler, HandlerKind};
use crate::ctxt::Ctxt;
use crate::shared;

/// Checks a `#[xray_handler]` function. `None` when the event argument or the `Result` return
/// type is missing (an error says which); `Some` can still come with errors in `cx`.
pub(crate) fn handler<'a>(cx: &mut Ctxt, function: &'a ItemFn) -> Option<Handler<'a>> {
    let sig = &function.sig;
    shared::check_attribute_mix(cx, "xray_handler", &function.attrs);
    // `fn handler(..) -> impl Future<Output = Result<..>>`: one fix for both the missing
    // `async` and the return type, so one error.
    if sig.asyncness.is_none() && returns_impl_future(sig) {
        cx.error_spanned_by(
            &sig.output,
            "write the handler as `async fn handler(event: LambdaEvent<T>) -> Result<R, E>` (or `request: Request` for lambda_http): the attribute wraps the body of an `async fn`, not a function returning `impl Future`",
        );
        let _ = event_argument(cx, sig);
        return None;
    }
    handler_qualifiers(cx, sig);
    let event = event_argument(cx, sig);
    let http = matches!(event, Some((_, _, Input::Http)));
    let return_ty = result_type(cx, sig, http);
    let ((event_index, event, kind), return_ty) = (event?, return_ty?);
    let kind = match kind {
        Input::Event => HandlerKind::Event,
        Input::Http => HandlerKind::Http {
            ok_is_impl_trait: ast::ok_type(return_ty)
                .is_some_and(|ok| matches!(ok, Type::ImplTrait(_))),
        },
    };
    Some(Handler {
        function,
        event,
        event_index,
        kind,
        return_ty,
        returns_impl_trait: ast::contains_impl_trait(return_ty),
        nameable_error: ast::error_type(return_ty).filter(|e| !ast::contains_impl_trait(e)),
    })
}

/// Checks a `#[xray_aws]` function; errors go to `cx`.
pub(crate) fn aws<'a>(cx: &mut Ctxt, function: &'a ItemFn) -> Aws<'a> {
    shared::check_attribute_mix(cx, "xray_aws", &function.attrs);
    if function.sig.asyncness.is_none() {
        cx.error_spanned_by(
            function.sig.fn_token,
            "#[xray_aws] wraps an async function (AWS SDK calls are async): write `async fn` here",
        );
    }
    let return_ty = match &function.sig.output {
        ReturnType::Type(_, ty) => Some(&**ty),
        ReturnType::Default => None,
    };
    Aws {
        function,
        return_ty,
        returns_impl_trait: return_ty.is_some_and(ast::contains_impl_trait),
    }
}

/// `async`, and none of `const`, an ABI or `...`: `lambda_runtime` awaits the handler.
fn handler_qualifiers(cx: &mut Ctxt, sig: &Signature) {
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
}

/// What carries the invocation's context.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    Event,
    Http,
}

impl Input {
    fn of(ty: &Type) -> Option<Self> {
        if last_segment_is(ty, "LambdaEvent") {
            Some(Input::Event)
        } else if last_segment_is(ty, "Request") {
            Some(Input::Http)
        } else {
            None
        }
    }
}

/// The first `LambdaEvent<T>` or `Request` argument, its index and kind. Errors for a `self`
/// receiver, for each further such argument, and for none at all (unless a receiver already
/// had its error).
fn event_argument<'a>(cx: &mut Ctxt, sig: &'a Signature) -> Option<(usize, &'a PatType, Input)> {
    let mut event: Option<(usize, &PatType, Input)> = None;
    let mut receiver = false;
    for (index, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(self_arg) => {
                receiver = true;
                cx.error_spanned_by(
                    self_arg,
                    "a Lambda handler is a free function, not a method: remove `self` and pass the state as an argument (`service_fn(move |event| handler(state.clone(), event))`)",
                );
            }
            FnArg::Typed(arg) => match (Input::of(&arg.ty), event) {
                (None, _) => {}
                (Some(kind), None) => event = Some((index, arg, kind)),
                (Some(Input::Event), Some((_, _, Input::Event))) => cx.error_spanned_by(
                    &arg.ty,
                    "a Lambda handler takes one `LambdaEvent<T>`: remove this one",
                ),
                (Some(Input::Http), Some((_, _, Input::Http))) => cx.error_spanned_by(
                    &arg.ty,
                    "an HTTP handler takes one `Request`: remove this one",
                ),
                (Some(_), Some(_)) => cx.error_spanned_by(
                    &arg.ty,
                    "a handler takes either `LambdaEvent<T>` (lambda_runtime) or `Request` (lambda_http), not both: remove this one (lambda_http's `RequestExt::lambda_context()` gives the Lambda context)",
                ),
            },
        }
    }
    if event.is_none() && !receiver {
        let message = "the handler must take the event as `event: LambdaEvent<T>` (lambda_runtime) or `request: Request` (lambda_http): it carries the invocation's trace header";
        match sig.inputs.last() {
            Some(last) => cx.error_spanned_by(
                last,
                format!("{message}. The attribute reads names, not types: a `type` alias is not seen, so write `LambdaEvent<T>` or `Request` itself"),
            ),
            None => cx.error_at(sig.paren_token.span.join(), message),
        }
    }
    event
}

/// The declared `Result<R, E>`, or an error saying to declare one.
fn result_type<'a>(cx: &mut Ctxt, sig: &'a Signature, http: bool) -> Option<&'a Type> {
    let example = if http {
        "Result<impl IntoResponse, lambda_http::Error>"
    } else {
        "Result<Response, lambda_runtime::Error>"
    };
    match &sig.output {
        ReturnType::Default => {
            cx.error_spanned_by(
                &sig.ident,
                format!("the handler must return `Result<R, E>` (the runtime needs it): add `-> {example}`"),
            );
            None
        }
        ReturnType::Type(_, ty) if !last_segment_is(ty, "Result") => {
            cx.error_spanned_by(
                ty,
                format!(
                    "the handler must return `Result<R, E>`: wrap the value, e.g. `-> {example}`"
                ),
            );
            None
        }
        ReturnType::Type(_, ty) => Some(ty),
    }
}

/// Whether the return type is `impl Future<..>` (any path ending in `Future`).
fn returns_impl_future(sig: &Signature) -> bool {
    let ReturnType::Type(_, ty) = &sig.output else {
        return false;
    };
    let Type::ImplTrait(bounds) = &**ty else {
        return false;
    };
    bounds.bounds.iter().any(|bound| {
        matches!(bound, syn::TypeParamBound::Trait(t) if t.path.segments.last().is_some_and(|s| s.ident == "Future"))
    })
}

/// Whether `ty` is a path whose last segment is `name`: the macro sees names, not types, so
/// `lambda_runtime::LambdaEvent<T>` and an imported `LambdaEvent<T>` both count.
fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(path) => path.path.segments.last().is_some_and(|s| s.ident == name),
        Type::Group(group) => last_segment_is(&group.elem, name),
        Type::Paren(paren) => last_segment_is(&paren.elem, name),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::{parse_quote, ItemFn};

    use crate::ctxt::Ctxt;

    fn messages(cx: Ctxt) -> Vec<String> {
        cx.check().map_or_else(
            |e| e.into_iter().map(|e| e.to_string()).collect(),
            |()| Vec::new(),
        )
    }

    #[test]
    fn a_good_handler_gives_its_event_argument() {
        let function: ItemFn = parse_quote! {
            async fn handler(client: Client, event: LambdaEvent<Request>) -> Result<Response, Error> {
                Ok(Response)
            }
        };
        let mut cx = Ctxt::default();
        let handler = super::handler(&mut cx, &function).expect("a valid handler");
        assert_eq!(handler.event_index, 1);
        let (pat, return_ty) = (&handler.event.pat, handler.return_ty);
        assert_eq!(quote!(#pat).to_string(), "event");
        assert_eq!(
            quote!(#return_ty).to_string(),
            "Result < Response , Error >"
        );
        assert!(!handler.returns_impl_trait);
        assert!(messages(cx).is_empty());
    }

    #[test]
    fn a_handler_returning_impl_trait_says_so() {
        let function: ItemFn = parse_quote! {
            async fn handler(event: lambda_runtime::LambdaEvent<V>) -> Result<V, impl Debug> {
                Ok(event.payload)
            }
        };
        let mut cx = Ctxt::default();
        let handler = super::handler(&mut cx, &function).expect("a valid handler");
        assert_eq!(handler.event_index, 0);
        assert!(handler.returns_impl_trait);
        assert!(messages(cx).is_empty());
    }

    #[test]
    fn a_bad_handler_gets_every_error() {
        let function: ItemFn = parse_quote! {
            fn handler(event: LambdaEvent<Value>) -> Value {
                event.payload
            }
        };
        let mut cx = Ctxt::default();
        assert!(super::handler(&mut cx, &function).is_none());
        let messages = messages(cx);
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert!(messages[0].contains("must be `async`"));
        assert!(messages[1].contains("must return `Result<R, E>`"));
    }

    #[test]
    fn a_second_event_and_a_receiver_are_errors_too() {
        let function: ItemFn = parse_quote! {
            async fn handler(&self, a: LambdaEvent<V>, b: LambdaEvent<V>) -> Result<V, E> {
                Ok(a.payload)
            }
        };
        let mut cx = Ctxt::default();
        let handler = super::handler(&mut cx, &function).expect("the first event is found");
        assert_eq!(handler.event_index, 1);
        let messages = messages(cx);
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert!(messages[0].contains("not a method"));
        assert!(messages[1].contains("remove this one"));
    }

    #[test]
    fn an_http_handler_is_told_by_its_request() {
        let function: ItemFn = parse_quote! {
            async fn handler(state: &State, request: lambda_http::Request) -> Result<impl IntoResponse, Error> {
                Ok("hi")
            }
        };
        let mut cx = Ctxt::default();
        let handler = super::handler(&mut cx, &function).expect("a valid handler");
        assert_eq!(handler.event_index, 1);
        assert_eq!(
            handler.kind,
            crate::ast::HandlerKind::Http {
                ok_is_impl_trait: true
            }
        );
        let error = handler.nameable_error.expect("the error type can be named");
        assert_eq!(quote!(#error).to_string(), "Error");
        assert!(messages(cx).is_empty());

        let function: ItemFn = parse_quote! {
            async fn handler(request: Request) -> Result<Response<Body>, impl Debug> {
                todo!()
            }
        };
        let mut cx = Ctxt::default();
        let handler = super::handler(&mut cx, &function).expect("a valid handler");
        assert_eq!(
            handler.kind,
            crate::ast::HandlerKind::Http {
                ok_is_impl_trait: false
            }
        );
        assert!(handler.nameable_error.is_none());
    }

    #[test]
    fn an_aws_function_may_return_nothing() {
        let function: ItemFn = parse_quote!(
            async fn ping(&self) {}
        );
        let mut cx = Ctxt::default();
        let aws = super::aws(&mut cx, &function);
        assert!(aws.return_ty.is_none());
        assert!(!aws.returns_impl_trait);
        assert!(messages(cx).is_empty());
    }
}
