//! The arithmetic helpers `add`, `subtract`, `multiply` and `divide`: integers stay integers,
//! overflow falls back to floating point, nothing becomes NaN or infinity.

use handlebars::RenderError;
use serde_json::{Number, Value as Json};

use super::args::{Args, Num};

/// A result as JSON: a float that is a whole number (within 2^53) is written as an integer.
fn num_to_json(args: &Args<'_, '_>, number: Num) -> Result<Json, RenderError> {
    match number {
        Num::Int(value) => Ok(Json::from(value)),
        Num::Float(value) if !value.is_finite() => Err(args.error("result is not a finite number")),
        Num::Float(value) if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 => {
            Ok(Json::from(value as i64))
        }
        Num::Float(value) => Number::from_f64(value)
            .map(Json::Number)
            .ok_or_else(|| args.error("result is not a finite number")),
    }
}

fn arithmetic(
    args: &Args<'_, '_>,
    integer: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> Result<Json, RenderError> {
    let (left, right) = (args.number(0)?, args.number(1)?);
    let result = match (left, right) {
        // On overflow, fall back to floating point like any JSON consumer would.
        (Num::Int(a), Num::Int(b)) => integer(a, b).map_or_else(|| Num::Float(float(a as f64, b as f64)), Num::Int),
        _ => Num::Float(float(left.as_f64(), right.as_f64())),
    };
    num_to_json(args, result)
}

/// `{{add a b}}`.
pub(super) fn add(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    arithmetic(args, i64::checked_add, |a, b| a + b)
}

/// `{{subtract a b}}`.
pub(super) fn subtract(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    arithmetic(args, i64::checked_sub, |a, b| a - b)
}

/// `{{multiply a b}}`.
pub(super) fn multiply(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    arithmetic(args, i64::checked_mul, |a, b| a * b)
}

/// `{{divide a b}}`: an integer when it divides exactly; dividing by zero is an error.
pub(super) fn divide(args: &Args<'_, '_>) -> Result<Json, RenderError> {
    if args.number(1)?.as_f64() == 0.0 {
        return Err(args.error("division by zero"));
    }
    arithmetic(
        args,
        |a, b| {
            a.checked_rem(b)
                .filter(|rest| *rest == 0)
                .and_then(|_| a.checked_div(b))
        },
        |a, b| a / b,
    )
}

#[cfg(test)]
mod tests {
    use crate::templates::tests::{ok, render};
    use serde_json::json;

    #[test]
    fn arithmetic_keeps_integers_integral() {
        assert_eq!(ok("{{add a b}}", json!({"a": 2, "b": 3})), "5");
        assert_eq!(ok("{{add a 0.5}}", json!({"a": 2})), "2.5");
        assert_eq!(ok("{{add a b}}", json!({"a": 1.5, "b": 1.5})), "3");
        assert_eq!(ok("{{subtract a b}}", json!({"a": "10", "b": 12})), "-2");
        assert_eq!(ok("{{multiply a b}}", json!({"a": 4, "b": " 2.5 "})), "10");
        assert_eq!(ok("{{divide a b}}", json!({"a": 9, "b": 3})), "3");
        // The README's inline examples.
        assert_eq!(ok("{{divide 9 3}}", json!({})), "3");
        assert_eq!(ok("{{divide 1 4}}", json!({})), "0.25");
        assert!(render("{{add name 1}}", json!({"name": "Ada"})).is_err());
        assert_eq!(ok("{{divide a b}}", json!({"a": 1, "b": 4})), "0.25");
        // Past i64, integers overflow into floating point rather than wrapping.
        assert!(ok("{{add a 1}}", json!({"a": i64::MAX})).starts_with("9.22337203685477"));
        assert_eq!(ok("{{add (multiply a 2) 1}}", json!({"a": 4})), "9");
        assert!(render("{{divide a 0}}", json!({"a": 1}))
            .unwrap_err()
            .contains("division by zero"));
        assert!(render("{{divide a b}}", json!({"a": 1, "b": "0.0"})).is_err());
        assert!(render("{{add a 1}}", json!({"a": "one"}))
            .unwrap_err()
            .contains("not a number"));
        assert!(render("{{add a 1}}", json!({})).is_err());
        assert!(render("{{add a 1}}", json!({"a": "NaN"})).is_err());
    }
}
