//! The arguments of `#[xray_handler(...)]` and `#[xray_aws(...)]`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned as _;
use syn::{
    parse::Parser, punctuated::Punctuated, Expr, ExprLit, Lit, LitBool, LitStr, Meta, Token,
};

use crate::ctxt::Ctxt;

use xray_lambda_rules::{is_name_char, valid_name, MAX_NAME};

/// Parsed and validated arguments.
pub(crate) struct Args {
    /// `name = "..."`: the subsegment name.
    pub(crate) name: Option<LitStr>,
    /// `crate = "path"`: where `xray_lambda` is, when renamed.
    pub(crate) krate: Option<syn::Path>,
    /// `capture_response = true|false` (`#[xray_handler]` only): the handler's response as
    /// metadata, whatever the builder and `POWERTOOLS_TRACER_CAPTURE_RESPONSE` say.
    pub(crate) capture_response: Option<LitBool>,
    /// `capture_error = true|false` (`#[xray_handler]` only): its error as metadata.
    pub(crate) capture_error: Option<LitBool>,
}

impl Args {
    /// The path expansions use to reach the runtime crate.
    pub(crate) fn krate(&self) -> TokenStream {
        match &self.krate {
            Some(path) => quote!(#path),
            None => quote!(::xray_lambda),
        }
    }
}

/// The valid argument names, for "did you mean".
const ARGUMENTS: [&str; 4] = ["name", "crate", "capture_response", "capture_error"];

/// Parses `name = "...", crate = "..."` of `#[attr(...)]`, collecting every problem into `cx`.
pub(crate) fn parse(cx: &mut Ctxt, attr: &str, tokens: TokenStream) -> Args {
    let mut args = Args {
        name: None,
        krate: None,
        capture_response: None,
        capture_error: None,
    };
    // `#[xray_handler("checkout")]`: the name without its key.
    if let Ok(lit) = syn::parse2::<LitStr>(tokens.clone()) {
        cx.error_spanned_by(
            &lit,
            format!(
                "the name goes with its key: write `#[{attr}(name = {})]`",
                quote!(#lit)
            ),
        );
        return args;
    }
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(metas) => metas,
        Err(err) => {
            cx.syn_error(syn::Error::new(
                err.span(),
                format!("expected `#[{attr}]` or `#[{attr}(name = \"...\")]`: {err}"),
            ));
            return args;
        }
    };
    for meta in metas {
        let key = meta.path().get_ident().map(ToString::to_string);
        match key.as_deref() {
            Some("name") => name_argument(cx, attr, &meta, &mut args),
            Some("crate") => crate_argument(cx, &meta, &mut args),
            Some(key @ ("capture_response" | "capture_error")) => {
                capture_argument(cx, attr, key, &meta, &mut args);
            }
            _ => unknown_argument(cx, attr, &meta),
        }
    }
    args
}

/// `name = "..."`: once, a string X-Ray accepts as a name.
fn name_argument(cx: &mut Ctxt, attr: &str, meta: &Meta, args: &mut Args) {
    if args.name.is_some() {
        cx.error_spanned_by(
            meta.path(),
            format!("duplicate `name` argument: give `#[{attr}]` one `name = \"...\"`"),
        );
        return;
    }
    if let Some(lit) = string_value(cx, meta, "name", "name = \"my-subsegment\"") {
        check_name(cx, &lit);
        args.name = Some(lit);
    }
}

/// `capture_response = true|false`, `capture_error = true|false`: on `#[xray_handler]`, once,
/// a `bool` literal.
fn capture_argument(cx: &mut Ctxt, attr: &str, key: &str, meta: &Meta, args: &mut Args) {
    if attr != "xray_handler" {
        cx.error_spanned_by(
            meta.path(),
            format!("`{key}` is an argument of `#[xray_handler]`: `#[{attr}]` takes `name = \"...\"` and `crate = \"...\"`"),
        );
        return;
    }
    let slot = if key == "capture_response" {
        &mut args.capture_response
    } else {
        &mut args.capture_error
    };
    if slot.is_some() {
        cx.error_spanned_by(
            meta.path(),
            format!("duplicate `{key}` argument: give it once"),
        );
        return;
    }
    match meta {
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(b), ..
            }) => *slot = Some(b.clone()),
            other => cx.error_spanned_by(
                other,
                format!("`{key}` takes `true` or `false`: `{key} = true`"),
            ),
        },
        // `capture_response` alone: a flag, as Powertools' decorators take it.
        Meta::Path(path) => *slot = Some(LitBool::new(true, path.span())),
        Meta::List(_) => cx.error_spanned_by(
            meta,
            format!("`{key}` takes `true` or `false`: `{key} = true`"),
        ),
    }
}

/// `crate = "..."`: once, a path.
fn crate_argument(cx: &mut Ctxt, meta: &Meta, args: &mut Args) {
    if args.krate.is_some() {
        cx.error_spanned_by(
            meta.path(),
            "duplicate `crate` argument: give one `crate = \"...\"`",
        );
        return;
    }
    if let Some(lit) = string_value(cx, meta, "crate", "crate = \"my_xray\"") {
        match lit.parse::<syn::Path>() {
            Ok(path) => args.krate = Some(path),
            Err(_) => cx.error_spanned_by(
                &lit,
                "`crate` takes the path of the renamed dependency, e.g. `crate = \"my_xray\"`",
            ),
        }
    }
}

/// Any other argument: named, with the valid one it most likely meant.
fn unknown_argument(cx: &mut Ctxt, attr: &str, meta: &Meta) {
    let path = meta.path();
    let written = quote!(#path).to_string().replace(' ', "");
    let hint = did_you_mean(&written)
        .map(|valid| format!(" Did you mean `{valid}`?"))
        .unwrap_or_default();
    cx.error_spanned_by(
        path,
        format!(
            "unknown argument `{written}` of `#[{attr}]`.{hint} The valid arguments are {}",
            if attr == "xray_handler" {
                "`name = \"...\"`, `crate = \"...\"`, `capture_response = true|false` and `capture_error = true|false`"
            } else {
                "`name = \"...\"` and `crate = \"...\"`"
            }
        ),
    );
}

/// The valid argument `written` was most likely meant to be: one edit away, or two letters
/// swapped.
fn did_you_mean(written: &str) -> Option<&'static str> {
    ARGUMENTS
        .into_iter()
        .find(|valid| edit_distance(written, valid) <= 1 || is_transposition(written, valid))
}

/// Levenshtein distance, for short words.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// Whether `a` is `b` with two neighbouring letters swapped (`nmae` for `name`).
fn is_transposition(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len() != b.len() {
        return false;
    }
    let differ: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    matches!(differ.as_slice(), [i, j] if *j == i + 1 && a[*i] == b[*j] && a[*j] == b[*i])
}

/// The string literal of `key = "..."`, or an error naming the form to write.
fn string_value(cx: &mut Ctxt, meta: &Meta, key: &str, example: &str) -> Option<LitStr> {
    match meta {
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => Some(s.clone()),
            other => {
                cx.error_spanned_by(
                    other,
                    format!("`{key}` takes a string literal: `{example}`"),
                );
                None
            }
        },
        _ => {
            cx.error_spanned_by(meta, format!("`{key}` takes a value: `{example}`"));
            None
        }
    }
}

/// X-Ray's rule for names (`xray_lambda_rules`, which the runtime applies too): 1-200 bytes
/// of Unicode letters, digits, spaces and `_ . : / % & # = + \ - @`.
fn check_name(cx: &mut Ctxt, lit: &LitStr) {
    let name = lit.value();
    if name.is_empty() {
        cx.error_spanned_by(
            lit,
            "a subsegment name cannot be empty: write e.g. `name = \"checkout\"`",
        );
    } else if name.len() > MAX_NAME {
        cx.error_spanned_by(
            lit,
            format!(
                "X-Ray accepts names of at most {MAX_NAME} bytes; this one has {}: shorten it",
                name.len()
            ),
        );
    }
    if let Some(bad) = name.chars().find(|&c| !is_name_char(c)) {
        cx.error_spanned_by(
            lit,
            format!(
                "X-Ray rejects the character {bad:?} in a name; use letters, digits, spaces and _ . : / % & # = + \\ - @ (e.g. {:?})",
                valid_name(&name)
            ),
        );
    }
}

/// A span-less default: the function's own name.
pub(crate) fn name_or(args: &Args, ident: &syn::Ident) -> LitStr {
    args.name.clone().unwrap_or_else(|| {
        LitStr::new(
            &syn::ext::IdentExt::unraw(ident).to_string(),
            Span::call_site(),
        )
    })
}

#[cfg(test)]
mod tests {
    /// The macros reject exactly the names the runtime would rewrite (the shared table).
    #[test]
    fn the_shared_table_holds_at_compile_time() {
        for &(name, valid) in xray_lambda_rules::cases::NAMES {
            let mut cx = crate::ctxt::Ctxt::default();
            super::check_name(
                &mut cx,
                &syn::LitStr::new(name, proc_macro2::Span::call_site()),
            );
            assert_eq!(!cx.has_errors(), valid, "{name:?}");
        }
    }

    #[test]
    fn near_misses_are_recognised() {
        for (written, meant) in [
            ("nmae", Some("name")),
            ("nam", Some("name")),
            ("names", Some("name")),
            ("crat", Some("crate")),
            ("krate", Some("crate")),
            ("label", None),
            ("n", None),
        ] {
            assert_eq!(super::did_you_mean(written), meant, "{written}");
        }
    }
}
