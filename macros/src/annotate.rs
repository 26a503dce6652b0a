//! `annotate!(key, value)` and `metadata!(key, value)`: literal keys are checked against
//! X-Ray's rules here, at compile time; value types by trait bounds on the runtime's functions,
//! so rustc's error points at the value.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned as _;
use syn::{Expr, Lit, LitStr, Path, Token};

use crate::ctxt::Ctxt;

use xray_lambda_rules::{
    annotation_key, is_annotation_key_char, MAX_ANNOTATION_KEY as MAX_KEY,
    RESERVED_ANNOTATIONS as RESERVED,
};

struct Input {
    krate: Option<Path>,
    key: Expr,
    value: Expr,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `crate = path;` first, for a renamed dependency.
        let krate = if input.peek(Token![crate]) && input.peek2(Token![=]) {
            input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            let path: Path = input.parse()?;
            input.parse::<Token![;]>()?;
            Some(path)
        } else {
            None
        };
        let key: Expr = input.parse()?;
        input.parse::<Token![,]>()?;
        let value: Expr = input.parse()?;
        let _ = input.parse::<Option<Token![,]>>()?;
        if !input.is_empty() {
            return Err(input.error("expected two arguments: `(key, value)`"));
        }
        Ok(Input { krate, key, value })
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Annotation,
    Metadata,
}

pub(crate) fn expand(kind: Kind, tokens: TokenStream) -> TokenStream {
    let name = match kind {
        Kind::Annotation => "annotate!",
        Kind::Metadata => "metadata!",
    };
    let Input { krate, key, value } = match syn::parse2::<Input>(tokens) {
        Ok(input) => input,
        Err(err) => {
            return syn::Error::new(
                err.span(),
                format!("{name} takes a key and a value: `{name}(\"user_id\", id)`"),
            )
            .to_compile_error()
        }
    };
    let krate = krate.map_or_else(|| quote!(::xray_lambda), |p| quote!(#p));
    let literal = match &key {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) => Some(s.clone()),
            other => {
                return syn::Error::new_spanned(
                    other,
                    format!("the key of {name} is a string: write `\"my_key\"`"),
                )
                .to_compile_error()
            }
        },
        _ => None,
    };
    // Spanned on the value, so a type error points at it.
    let value_ref = quote_spanned!(value.span()=> &#value);
    match (kind, literal) {
        (Kind::Annotation, Some(key)) => {
            let mut cx = Ctxt::default();
            check_annotation_key(&mut cx, &key);
            if let Err(err) = cx.check() {
                return err.to_compile_error();
            }
            quote! { #krate::__private::annotate(#key, #value) }
        }
        (Kind::Annotation, None) => quote! { #krate::__private::annotate_dynamic(#key, #value) },
        (Kind::Metadata, Some(key)) => {
            if key.value().is_empty() {
                return syn::Error::new_spanned(
                    &key,
                    "a metadata key cannot be empty: write e.g. `\"order\"`",
                )
                .to_compile_error();
            }
            quote! { #krate::__private::metadata(#key, #value_ref) }
        }
        (Kind::Metadata, None) => quote! { #krate::__private::metadata(#key, #value_ref) },
    }
}

/// X-Ray indexes annotation keys of 1-500 characters from `[A-Za-z0-9_]`; other keys are
/// dropped by the official SDKs, silently or with a warning. Here they do not compile.
fn check_annotation_key(cx: &mut Ctxt, key: &LitStr) {
    let value = key.value();
    if value.is_empty() {
        cx.error_spanned_by(
            key,
            "an annotation key cannot be empty: write e.g. `\"user_id\"`",
        );
        return;
    }
    if RESERVED.contains(&value.as_str()) {
        cx.error_spanned_by(
            key,
            format!("`{value}` is the annotation xray-lambda writes on every handler subsegment, and yours would replace it: choose another key, e.g. \"{}{value}\"", "my_"),
        );
    }
    let count = value.chars().count();
    if count > MAX_KEY {
        cx.error_spanned_by(
            key,
            format!("X-Ray indexes annotation keys of at most {MAX_KEY} characters; this one has {count}: shorten it"),
        );
    }
    if let Some(bad) = value.chars().find(|&c| !is_annotation_key_char(c)) {
        let fixed = annotation_key(&value).map_or_else(|fixed| fixed, str::to_owned);
        cx.error_spanned_by(
            key,
            format!(
                "X-Ray annotation keys take only letters, digits and `_`, not {bad:?}: write {fixed:?}"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    /// The macros reject exactly the keys the runtime would rewrite (the shared table).
    #[test]
    fn the_shared_table_holds_at_compile_time() {
        for &(key, valid) in xray_lambda_rules::cases::ANNOTATION_KEYS {
            let mut cx = crate::ctxt::Ctxt::default();
            super::check_annotation_key(
                &mut cx,
                &syn::LitStr::new(key, proc_macro2::Span::call_site()),
            );
            assert_eq!(!cx.has_errors(), valid, "{key:?}");
        }
    }
}
