//! SpamAssassin's `html_*` evals over the measurements of each HTML part
//! ([`crate::mime::view::HtmlPart`]): as in HTMLEval.pm, a test is true when some HTML
//! part passes it, and false when the message has none.

use crate::mime::view::{HtmlPart, MessageView};

/// An argument as a number (quotes around it allowed; `'0400'` is 400).
fn number(arg: Option<&String>) -> Option<f64> {
    arg?.trim_matches(|c| c == '\'' || c == '"')
        .trim()
        .parse()
        .ok()
}

/// SpamAssassin's comparison argument (`'!= 0'`, `'< 384'`): an operator and a number.
/// None for anything else (SpamAssassin refuses what is not `^[<>=!\-+ 0-9]+$`; the stock
/// rules use only these forms).
fn comparison(expr: &str) -> Option<(&'static str, f64)> {
    let expr = expr.trim();
    let (op, rest) = ["==", "!=", "<=", ">=", "<", ">"]
        .into_iter()
        .find_map(|op| expr.strip_prefix(op).map(|rest| (op, rest)))?;
    let n: f64 = rest.trim().parse().ok()?;
    Some((op, n))
}

fn compare(value: f64, (op, n): (&str, f64)) -> bool {
    match op {
        "==" => value == n,
        "!=" => value != n,
        "<=" => value <= n,
        ">=" => value >= n,
        "<" => value < n,
        _ => value > n,
    }
}

/// A tag name as `html_tag_balance` and `html_tag_exists` accept it.
fn tag_name(arg: Option<&String>) -> Option<&str> {
    let tag = arg?.as_str();
    (!tag.is_empty() && tag.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(tag)
}

/// Whether [`run`] knows this function with these arguments.
pub fn implemented(function: &str, args: &[String]) -> bool {
    match function {
        "html_image_only" | "html_image_ratio" => {
            number(args.first()).is_some() && number(args.get(1)).is_some()
        }
        "html_tag_balance" => {
            tag_name(args.first()).is_some() && args.get(1).and_then(|e| comparison(e)).is_some()
        }
        "html_tag_exists" => tag_name(args.first()).is_some(),
        "html_eval" => {
            args.first().is_some_and(|k| k == "length")
                && args.get(1).and_then(|e| comparison(e)).is_some()
        }
        _ => false,
    }
}

/// `min < value <= max`, SpamAssassin's range of `html_image_*` and `html_range`.
fn in_range(value: f64, min: f64, max: f64) -> bool {
    value > min && value <= max
}

/// The result of an `html_*` eval [`implemented`] says it knows; None for others.
pub fn run(function: &str, args: &[String], view: &MessageView) -> Option<bool> {
    let any = |test: &dyn Fn(&HtmlPart) -> bool| view.html_parts.iter().any(test);
    Some(match function {
        // An HTML part with an image tag whose source is min < length <= max characters.
        "html_image_only" => {
            let (min, max) = (number(args.first())?, number(args.get(1))?);
            any(&|p| p.inside.contains_key("img") && in_range(p.length as f64, min, max))
        }
        // Visible characters per pixel of the images that give their size.
        "html_image_ratio" => {
            let (min, max) = (number(args.first())?, number(args.get(1))?);
            any(&|p| {
                p.image_area > 0 && in_range(p.non_space as f64 / p.image_area as f64, min, max)
            })
        }
        "html_tag_balance" => {
            let tag = tag_name(args.first())?;
            let test = comparison(args.get(1)?)?;
            any(&|p| p.inside.get(tag).is_some_and(|&n| compare(n as f64, test)))
        }
        "html_tag_exists" => {
            let tag = tag_name(args.first())?;
            any(&|p| p.inside.contains_key(tag))
        }
        "html_eval" => {
            let test = comparison(args.get(1)?)?;
            any(&|p| compare(p.length as f64, test))
        }
        _ => return None,
    })
}

/// `html_range('length', min, max)`: some part's source length in the range (`max`
/// 'inf' or absent: no upper bound).
pub fn length_in_range(view: &MessageView, args: &[String]) -> Option<bool> {
    let min = number(args.get(1))?;
    let max = number(args.get(2)).unwrap_or(f64::INFINITY);
    Some(
        view.html_parts
            .iter()
            .any(|p| in_range(p.length as f64, min, max)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn view(html: &str) -> MessageView {
        MessageView::new(format!("Subject: s\r\nContent-Type: text/html\r\n\r\n{html}").as_bytes())
    }

    /// As SpamAssassin counts: closings never take a tag below 0, a tag seen only as a
    /// closing exists, an unclosed center is unbalanced.
    #[test]
    fn tag_balance_and_existence() {
        let v = view("<html><body></center><center>x</body></body>");
        let eval = |f: &str, a: &[&str]| run(f, &args(a), &v);
        assert_eq!(eval("html_tag_balance", &["center", "!= 0"]), Some(true));
        assert_eq!(eval("html_tag_balance", &["body", "!= 0"]), Some(false));
        assert_eq!(eval("html_tag_balance", &["html", "!= 0"]), Some(true));
        assert_eq!(eval("html_tag_exists", &["center"]), Some(true));
        assert_eq!(eval("html_tag_exists", &["head"]), Some(false));
        assert!(!implemented("html_tag_balance", &args(&["center", "!= x"])));
        assert!(!implemented("html_tag_exists", &args(&["o:p"])));
        // Script contents are not tags; the script itself closes.
        let v = view("<script>if (a<b) { document.write('<center>') }</script>x");
        assert_eq!(run("html_tag_exists", &args(&["center"]), &v), Some(false));
        assert_eq!(
            run("html_tag_balance", &args(&["script", "!= 0"]), &v),
            Some(false)
        );
        // No HTML part: every test is false.
        let plain = MessageView::new(b"Subject: s\r\n\r\n<center>x\r\n");
        assert_eq!(
            run("html_tag_exists", &args(&["center"]), &plain),
            Some(false)
        );
    }

    /// Length is the source's characters; the image ratio counts visible characters per
    /// pixel of the images with a width and a height (a size that is no number: 200).
    #[test]
    fn image_only_and_ratio() {
        let html =
            "<a href=\"http://x.example/\"><img src=\"a.gif\" width=\"100\" height=\"x\"></a>hi";
        let v = view(html);
        let length = html.chars().count() as f64;
        assert_eq!(v.html_parts[0].length as f64, length);
        assert_eq!(v.html_parts[0].image_area, 100 * 200);
        assert_eq!(v.html_parts[0].non_space, 2);
        let eval = |f: &str, a: &[&str]| run(f, &args(a), &v);
        assert_eq!(eval("html_image_only", &["0000", "0400"]), Some(true));
        assert_eq!(eval("html_image_only", &["0400", "0800"]), Some(false));
        assert_eq!(eval("html_image_ratio", &["0.000", "0.002"]), Some(true));
        assert_eq!(eval("html_eval", &["length", "< 384"]), Some(true));
        assert_eq!(
            length_in_range(&v, &args(&["length", "0", "1024"])),
            Some(true)
        );
        // Percentages: width ×8, height ×6; only both sizes count.
        let v = view("<img width=\"10%\" height=\"10%\"><img width=\"5\">text");
        assert_eq!(v.html_parts[0].image_area, 80 * 60);
    }
}
