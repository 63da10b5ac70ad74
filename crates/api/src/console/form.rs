//! Form fields with their errors beside them, and the problem an action
//! answered, as the admin API would have answered it.
//!
//! A refused form is re-rendered with what was typed, the status the API
//! would have answered, and the problem's detail next to the field it is
//! about (`aria-invalid`, `aria-describedby`), or at the top of the form
//! when it is about the action as a whole (`role="alert"`).

use actix_web::ResponseError as _;
use actix_web::http::StatusCode;
use maud::{Markup, html};

use crate::ApiError;

/// What an action was refused with.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    /// The problem's stable `code` (`quota_exceeded`, `validation`, ...).
    pub code: &'static str,
    pub detail: String,
    /// The field it is about, for a validation error.
    pub field: Option<String>,
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        if let ApiError::Operation(tenantry_ops::Error::Internal(cause)) = &e {
            tracing::error!(%cause, "internal error");
        }
        Self {
            status: e.status_code(),
            code: e.code(),
            detail: e.detail(),
            field: e.field().map(str::to_owned),
        }
    }
}

impl From<tenantry_ops::Error> for Problem {
    fn from(e: tenantry_ops::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl Problem {
    /// A problem the console finds itself in a form's input (before any
    /// operation runs): 422 on `field`.
    #[must_use]
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation",
            detail: detail.into(),
            field: Some(field.to_owned()),
        }
    }

    /// The detail, when the problem is about `field`.
    #[must_use]
    pub fn on(&self, field: &str) -> Option<&str> {
        (self.field.as_deref() == Some(field)).then_some(self.detail.as_str())
    }

    /// The detail, when the problem is about none of `fields` (so it is
    /// shown for the form as a whole).
    #[must_use]
    pub fn general(&self, fields: &[&str]) -> Option<&str> {
        match self.field.as_deref() {
            Some(f) if fields.contains(&f) => None,
            _ => Some(self.detail.as_str()),
        }
    }
}

/// The problem at the top of a form (`fields`: those shown beside their
/// own input).
#[must_use]
pub fn alert(problem: Option<&Problem>, fields: &[&str]) -> Markup {
    html! {
        @if let Some(detail) = problem.and_then(|p| p.general(fields)) {
            div.problem role="alert" { p { (detail) } }
        }
    }
}

/// What kind of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Search,
    DateTime,
    TextArea,
}

/// A labelled input named `name` (its id is `name` too, with `.` as `-`),
/// holding `value`, with `problem`'s detail beside it when it is about this
/// field. `hint`: a line of help under the label.
#[must_use]
pub fn field(
    kind: Kind,
    name: &str,
    label: &str,
    value: &str,
    hint: Option<&str>,
    problem: Option<&Problem>,
) -> Markup {
    field_with_id(
        kind,
        &name.replace('.', "-"),
        name,
        label,
        value,
        hint,
        problem,
    )
}

/// [`field`] with its own `id`: for a page with several forms that each
/// have a field of the same name (ids must be unique on the page).
#[must_use]
pub fn field_with_id(
    kind: Kind,
    id: &str,
    name: &str,
    label: &str,
    value: &str,
    hint: Option<&str>,
    problem: Option<&Problem>,
) -> Markup {
    let error = problem.and_then(|p| p.on(name));
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let described = match (hint.is_some(), error.is_some()) {
        (true, true) => Some(format!("{hint_id} {error_id}")),
        (true, false) => Some(hint_id.clone()),
        (false, true) => Some(error_id.clone()),
        (false, false) => None,
    };
    let invalid = error.map(|_| "true");
    html! {
        div.field {
            label for=(id) { (label) }
            @if let Some(hint) = hint {
                p.hint id=(hint_id) { (hint) }
            }
            @match kind {
                Kind::TextArea => {
                    textarea id=(id) name=(name) rows="4" aria-invalid=[invalid]
                        aria-describedby=[described.as_deref()] { (value) }
                }
                _ => {
                    input id=(id) name=(name) value=(value)
                        type=(match kind {
                            Kind::Number => "number",
                            Kind::Search => "search",
                            Kind::DateTime => "datetime-local",
                            _ => "text",
                        })
                        inputmode=[(kind == Kind::Number).then_some("numeric")]
                        aria-invalid=[invalid]
                        aria-describedby=[described.as_deref()];
                }
            }
            @if let Some(error) = error {
                p.field-error id=(error_id) { (error) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fields_error_is_beside_it_and_referenced_by_it() {
        let p = Problem::invalid("slug", "must be lowercase");
        let html = field(Kind::Text, "slug", "Slug", "A", None, Some(&p)).into_string();
        assert!(html.contains(r#"aria-invalid="true""#), "{html}");
        assert!(html.contains(r#"aria-describedby="slug-error""#), "{html}");
        assert!(html.contains(r#"<p class="field-error" id="slug-error">must be lowercase</p>"#));
        let other = field(Kind::Text, "name", "Name", "", None, Some(&p)).into_string();
        assert!(!other.contains("must be lowercase"));
        assert!(alert(Some(&p), &["slug"]).into_string().is_empty());
        assert!(
            alert(Some(&p), &["name"])
                .into_string()
                .contains("must be lowercase")
        );
    }
}
