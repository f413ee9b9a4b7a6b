//! The request's body framing as sent upstream; runs in `upstream_request_filter`.
//!
//! pingora accepts a request whose `Content-Length` is repeated with one value (`5` twice, or
//! `5, 5`) and reads its body by that value, but forwards the fields as they came: a backend
//! that refuses such a request (RFC 9110 §8.6 allows it) or reads it otherwise is then out of
//! step with vigie. RFC 9110 lets a recipient either refuse it or replace it with one field
//! holding the value; vigie sends upstream exactly one `Content-Length`. Differing values
//! never get here: pingora refuses them with 400.

use pingora::http::RequestHeader;
use pingora::Result;

/// Replace repeated identical `Content-Length` values with a single field.
pub fn one_content_length(req: &mut RequestHeader) -> Result<()> {
    let cl = http::header::CONTENT_LENGTH;
    let mut values = req.headers.get_all(&cl).iter();
    let Some(first) = values.next() else {
        return Ok(());
    };
    let single = values.next().is_none() && !first.as_bytes().contains(&b',');
    if single {
        return Ok(());
    }
    let mut value: Option<String> = None;
    for v in req.headers.get_all(&cl) {
        for part in String::from_utf8_lossy(v.as_bytes()).split(',') {
            let part = part.trim();
            if value.as_deref().is_some_and(|seen| seen != part) {
                // Differing values: leave them to pingora's framing checks (not reached).
                return Ok(());
            }
            value = Some(part.to_string());
        }
    }
    if let Some(v) = value {
        req.insert_header(cl, v)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(values: &[&str]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/", None).unwrap();
        for v in values {
            r.append_header("content-length", *v).unwrap();
        }
        r
    }

    fn lengths(r: &RequestHeader) -> Vec<&str> {
        r.headers
            .get_all("content-length")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn repeated_values_become_one_field() {
        for values in [&["5", "5"][..], &["5, 5"], &["5,5", "5"]] {
            let mut r = req(values);
            one_content_length(&mut r).unwrap();
            assert_eq!(lengths(&r), ["5"], "{values:?}");
        }
    }

    #[test]
    fn single_absent_and_differing_values_are_left_alone() {
        for values in [&["5"][..], &[], &["5", "6"]] {
            let mut r = req(values);
            one_content_length(&mut r).unwrap();
            assert_eq!(lengths(&r), values, "{values:?}");
        }
    }
}
