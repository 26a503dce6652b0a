//! Typed views of the functions the attributes go on. Validation (`valid.rs`) builds them, so
//! expansion (`expand.rs`) reads what it needs without searching the signature again.

use syn::visit_mut::VisitMut;
use syn::{ItemFn, PatType, Type, TypeImplTrait};

/// A function under `#[xray_handler]` whose signature passed validation.
pub(crate) struct Handler<'a> {
    pub(crate) function: &'a ItemFn,
    /// The argument that carries the invocation's trace header: a `LambdaEvent<T>`, or the
    /// `lambda_http::Request` of an HTTP function.
    pub(crate) event: &'a PatType,
    /// Where `event` is in `function.sig.inputs`.
    pub(crate) event_index: usize,
    /// What `event` is.
    pub(crate) kind: HandlerKind,
    /// The declared return type, a `Result<R, E>`.
    pub(crate) return_ty: &'a Type,
    /// Whether `return_ty` holds an `impl Trait`: such a type cannot be named in a `let`.
    pub(crate) returns_impl_trait: bool,
    /// The `E` of `Result<R, E>` when `return_ty` has `impl Trait` in `R` only: the output
    /// is then ascribed `Result<_, E>`, so the error is still described by its type.
    pub(crate) nameable_error: Option<&'a Type>,
}

/// The two kinds of handler, by the argument that carries the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandlerKind {
    /// `event: LambdaEvent<T>` (`lambda_runtime`).
    Event,
    /// `request: Request` (`lambda_http`); `ok_is_impl_trait` when the `Ok` type is
    /// `impl IntoResponse`, which is then converted (and so seen whole) before it is returned.
    Http { ok_is_impl_trait: bool },
}

/// A function under `#[xray_aws]` that passed validation.
pub(crate) struct Aws<'a> {
    pub(crate) function: &'a ItemFn,
    /// The declared return type; `None` when the function returns `()` implicitly.
    pub(crate) return_ty: Option<&'a Type>,
    /// Whether `return_ty` holds an `impl Trait`: such a type cannot be named in a `let`.
    pub(crate) returns_impl_trait: bool,
}

/// The first generic argument of `Result<T, E>` (or of a one-argument alias such as
/// `anyhow::Result<T>`): the `Ok` type.
pub(crate) fn ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let syn::PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// The second generic argument of `Result<T, E>`: the `Err` type, when written.
pub(crate) fn error_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let syn::PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else {
        return None;
    };
    args.args
        .iter()
        .filter_map(|arg| match arg {
            syn::GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .nth(1)
}

/// Whether `ty` holds an `impl Trait` anywhere, e.g. `Result<Vec<impl Fn()>, E>`. Read from
/// the syntax tree, not the tokens, so `Result<[S; 1], E>` or a type named `MyImpl` is not
/// mistaken for one.
pub(crate) fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder {
        found: bool,
    }
    impl VisitMut for Finder {
        fn visit_type_impl_trait_mut(&mut self, _: &mut TypeImplTrait) {
            self.found = true;
        }
    }
    let mut finder = Finder { found: false };
    // A mutable visitor because `visit-mut` is the syn feature the workspace enables; the
    // visitor changes nothing, so it runs on a copy.
    finder.visit_type_mut(&mut ty.clone());
    finder.found
}

#[cfg(test)]
mod tests {
    use super::contains_impl_trait;
    use syn::{parse_quote, Type};

    fn check(ty: &Type, expected: bool) {
        assert_eq!(contains_impl_trait(ty), expected, "{}", quote::quote!(#ty));
    }

    #[test]
    fn finds_impl_trait_in_the_ok_type() {
        check(&parse_quote!(Result<impl Serialize, E>), true);
    }

    #[test]
    fn finds_impl_trait_nested_in_a_generic() {
        check(&parse_quote!(Result<Vec<impl Fn()>, E>), true);
    }

    #[test]
    fn finds_impl_trait_in_the_error_type() {
        check(
            &parse_quote!(Result<Value, impl std::fmt::Debug + Into<Diagnostic>>),
            true,
        );
    }

    #[test]
    fn dyn_trait_is_not_impl_trait() {
        check(&parse_quote!(Result<Box<dyn Error>, E>), false);
    }

    #[test]
    fn an_array_is_not_impl_trait() {
        check(&parse_quote!(Result<[S; 1], E>), false);
    }

    #[test]
    fn names_ending_in_impl_are_not_impl_trait() {
        // The token scan this replaced took these for `impl Trait`: `Simpl` ends in "impl".
        check(&parse_quote!(Result<[Simpl; 1], E>), false);
        check(
            &parse_quote!(Result<(MyImpl, Vec<Simpl>), my::impl_::E>),
            false,
        );
    }

    #[test]
    fn plain_types_are_not_impl_trait() {
        check(&parse_quote!(Result<Value, lambda_runtime::Error>), false);
        check(&parse_quote!(usize), false);
    }
}
