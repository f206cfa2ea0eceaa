//! `#[derive(Module)]` for the `understanding-buffers` crate, which re-exports it: use it as
//! `understanding_buffers::nn::Module` (or from the crate's prelude).
//!
//! The derive reads a struct's fields and writes the two lists the `TorchModule` trait asks
//! for, `fields` and `fields_mut`, from the same declaration, so they cannot disagree. (The
//! trait is not named `Module`, which is candle's `forward` trait; the derive is, since derive
//! macros have a namespace of their own.) What each field *is* comes from its type, through
//! the crate's `Field` trait: a `Param` is a parameter, a `Buffer` a buffer, a `Tensor` a
//! plain field, a `TorchModule` a child, and a number or flag is configuration. The derive
//! itself only knows names and four field attributes:
//!
//! - `#[module(rename = "W_query")]`: the name PyTorch uses, when Rust's naming differs;
//! - `#[module(persistent = false)]`: a buffer left out of the state dict;
//! - `#[module(skip)]`: a field the module walk never sees;
//! - `#[module(training)]` on a `bool`: the module's own training flag (PyTorch's
//!   `self.training`), set by `train()`/`eval()` and read by `is_training()`;
//!
//! and, on the struct, `#[module(extra_repr = "method")]`: a `fn(&self) -> String` whose
//! text goes inside the parentheses when the module prints (PyTorch's `extra_repr`).
//!
//! For
//!
//! ```text
//! #[derive(Module)]
//! struct Scale {
//!     #[module(rename = "Weight")]
//!     weight: Param,
//!     #[module(persistent = false)]
//!     cache: Buffer,
//! }
//! ```
//!
//! it writes (as `cargo expand` shows it)
//!
//! ```text
//! impl ::understanding_buffers::nn::TorchModule for Scale {
//!     fn type_name(&self) -> &'static str { "Scale" }
//!     fn fields(&self) -> Vec<(&'static str, FieldRef<'_>)> {
//!         vec![
//!             ("Weight", Field::field(&self.weight)),
//!             ("cache", non_persistent(&self.cache)),
//!         ]
//!     }
//!     fn fields_mut(&mut self) -> Vec<(&'static str, FieldMut<'_>)> {
//!         vec![
//!             ("Weight", Field::field_mut(&mut self.weight)),
//!             ("cache", Field::field_mut(&mut self.cache)),
//!         ]
//!     }
//! }
//!
//! impl std::fmt::Display for Scale { /* TorchModule::repr: as PyTorch prints a module */ }
//! ```
//!
//! with every path spelled out from `::understanding_buffers::nn`.

use proc_macro::TokenStream;
use proc_macro2::Span;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Error, Fields, Ident, LitBool, LitStr};

/// Implements `understanding_buffers::nn::TorchModule` for a struct with named fields.
/// See the crate documentation for the attributes.
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// One field the walk sees: its Rust name, its module name, and whether it is saved.
struct Entry {
    ident: Ident,
    name: String,
    persistent: bool,
    /// The field's type, where a type error (not a field type, not a buffer) points.
    ty: Span,
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named.named.iter().collect(),
            Fields::Unit => Vec::new(),
            Fields::Unnamed(_) => return Err(not_a_struct(input)),
        },
        _ => return Err(not_a_struct(input)),
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut training: Option<Ident> = None;
    for field in fields {
        let ident = field.ident.clone().ok_or_else(|| not_a_struct(input))?;
        let entry = match entry(ident, field.ty.span(), &field.attrs)? {
            Role::Walked(entry) => entry,
            Role::Skipped => continue,
            Role::Training(flag) => {
                if let Some(first) = &training {
                    let message =
                        format!("`{first}` is already this module's #[module(training)] flag");
                    return Err(Error::new(flag.span(), message));
                }
                training = Some(flag);
                continue;
            }
        };
        {
            if let Some(other) = entries.iter().find(|e| e.name == entry.name) {
                let message = format!(
                    "fields `{}` and `{}` are both named {:?}; give one another #[module(rename = \"...\")]",
                    other.ident, entry.ident, entry.name
                );
                return Err(Error::new(entry.ident.span(), message));
            }
            entries.push(entry);
        }
    }

    let extra_repr = match struct_settings(&input.attrs)? {
        Some(method) => quote!(
            fn extra_repr(&self) -> ::std::string::String {
                Self::#method(self)
            }
        ),
        None => quote!(),
    };
    let krate = quote!(::understanding_buffers);
    let mode = match &training {
        Some(flag) => quote!(
            fn set_training(&mut self, training: bool) {
                self.#flag = training;
                #krate::nn::module::set_children_training(self, training);
            }
            fn is_training(&self) -> bool {
                self.#flag
            }
        ),
        None => quote!(),
    };
    let nn = quote!(#krate::nn);
    let reads = entries.iter().map(|e| {
        let (ident, name) = (&e.ident, &e.name);
        if e.persistent {
            quote_spanned!(e.ty=> (#name, #nn::Field::field(&self.#ident)))
        } else {
            quote_spanned!(e.ty=> (#name, #nn::field::non_persistent(&self.#ident)))
        }
    });
    let writes = entries.iter().map(|e| {
        let (ident, name) = (&e.ident, &e.name);
        quote_spanned!(e.ty=> (#name, #nn::Field::field_mut(&mut self.#ident)))
    });
    let ty = &input.ident;
    let type_name = ty.unraw().to_string();
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics #nn::TorchModule for #ty #ty_generics #where_clause {
            fn type_name(&self) -> &'static str {
                #type_name
            }
            fn fields(&self) -> ::std::vec::Vec<(&'static str, #nn::FieldRef<'_>)> {
                ::std::vec![#(#reads),*]
            }
            fn fields_mut(&mut self) -> ::std::vec::Vec<(&'static str, #nn::FieldMut<'_>)> {
                ::std::vec![#(#writes),*]
            }
            #extra_repr
            #mode
        }

        // The module prints as PyTorch prints it (`TorchModule::repr`).
        impl #impl_generics ::std::fmt::Display for #ty #ty_generics #where_clause {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&#nn::TorchModule::repr(self))
            }
        }
    })
}

/// The walk's view of one field, or `None` for `#[module(skip)]`.
/// What a field is to the derive: one the walk sees, the module's own training flag, or one
/// it skips.
enum Role {
    Walked(Entry),
    Training(Ident),
    Skipped,
}

fn entry(ident: Ident, ty: Span, attrs: &[syn::Attribute]) -> syn::Result<Role> {
    let mut name = ident.unraw().to_string();
    let mut persistent = true;
    let mut skip = false;
    let mut training = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let value: LitStr = meta.value()?.parse()?;
                name = value.value();
                if name.is_empty() || name.contains('.') {
                    return Err(Error::new(
                        value.span(),
                        "a module name must be non-empty and contain no '.' (dots join a child's name to its tensors' names)",
                    ));
                }
            } else if meta.path.is_ident("persistent") {
                persistent = meta.value()?.parse::<LitBool>()?.value;
            } else if meta.path.is_ident("skip") {
                skip = true;
            } else if meta.path.is_ident("training") {
                training = true;
            } else {
                return Err(meta.error(
                    "unknown module attribute; expected `rename = \"...\"`, `persistent = false`, `skip` or `training`",
                ));
            }
            Ok(())
        })?;
    }
    if training {
        return Ok(Role::Training(ident));
    }
    if skip {
        return Ok(Role::Skipped);
    }
    Ok(Role::Walked(Entry {
        ident,
        name,
        persistent,
        ty,
    }))
}

/// The struct's own `#[module(extra_repr = "method")]`: the method that gives PyTorch's
/// `extra_repr` text.
fn struct_settings(attrs: &[syn::Attribute]) -> syn::Result<Option<Ident>> {
    let mut method = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("extra_repr") {
                let value: LitStr = meta.value()?.parse()?;
                method = Some(value.parse::<Ident>()?);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown module attribute on a struct; expected `extra_repr = \"method\"` (a `fn(&self) -> String` that gives PyTorch's extra_repr)",
                ))
            }
        })?;
    }
    Ok(method)
}

fn not_a_struct(input: &DeriveInput) -> Error {
    Error::new(
        input.ident.span(),
        "#[derive(Module)] works on structs with named fields",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derive's error for `input`, which must be refused.
    fn refusal(input: DeriveInput) -> String {
        match expand(&input) {
            Ok(tokens) => panic!("accepted: {tokens}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn two_fields_under_one_name_are_refused() {
        let err = refusal(syn::parse_quote! {
            struct Twice {
                #[module(rename = "w")]
                a: Param,
                w: Param,
            }
        });
        assert_eq!(
            err,
            "fields `a` and `w` are both named \"w\"; give one another #[module(rename = \"...\")]"
        );
    }

    #[test]
    fn unknown_attributes_are_refused_with_the_known_ones() {
        let err = refusal(syn::parse_quote! {
            struct Unknown {
                #[module(persistant = false)]
                w: Param,
            }
        });
        assert!(
            err.starts_with("unknown module attribute; expected `rename"),
            "{err}"
        );
        let err = refusal(syn::parse_quote! {
            #[module(extra = "x")]
            struct OnTheStruct { w: Param }
        });
        assert!(err.contains("expected `extra_repr = \"method\"`"), "{err}");
    }

    #[test]
    fn bad_names_and_shapes_are_refused() {
        let err = refusal(syn::parse_quote! {
            struct Dotted {
                #[module(rename = "a.b")]
                w: Param,
            }
        });
        assert!(err.contains("contain no '.'"), "{err}");
        let err = refusal(syn::parse_quote!(
            struct Tuple(Param);
        ));
        assert_eq!(err, "#[derive(Module)] works on structs with named fields");
        let err = refusal(syn::parse_quote! {
            struct Two {
                #[module(training)]
                a: bool,
                #[module(training)]
                b: bool,
            }
        });
        assert!(
            err.contains("already this module's #[module(training)] flag"),
            "{err}"
        );
    }

    #[test]
    fn a_good_struct_expands_to_both_field_lists_and_display() {
        let tokens = expand(&syn::parse_quote! {
            struct Good {
                #[module(rename = "W")]
                w: Param,
                #[module(persistent = false)]
                cache: Buffer,
            }
        })
        .unwrap()
        .to_string();
        assert!(
            tokens.contains("\"W\"") && tokens.contains("non_persistent"),
            "{tokens}"
        );
        assert!(tokens.contains("Display for Good"), "{tokens}");
    }
}
