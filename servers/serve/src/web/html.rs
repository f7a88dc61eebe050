//! HTML output: escaping and the page frame. Every value from a request, the configuration or
//! an upload goes through [`esc`] before it reaches a page.

/// `text` with `& < > " '` replaced by entities: safe in element content and quoted attributes.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet at `/web/style.css` (a file, so the CSP needs no inline styles).
pub(crate) const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem;color:#222}
header{display:flex;justify-content:space-between;align-items:center;border-bottom:1px solid #ccc;margin-bottom:1rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top}
code{font-family:ui-monospace,monospace;word-break:break-all}
.error{background:#fdd;border:1px solid #c00;padding:.5rem}
#status{font-weight:bold}
form{margin:.5rem 0}textarea{width:100%;min-height:4rem}
button{padding:.3rem 1rem}
";

/// A whole page: `title` (plain text), the signed-in user with the logout form's CSRF token,
/// and `body` (HTML already escaped by the caller).
pub(crate) fn page(title: &str, user: Option<(&str, &str)>, body: &str) -> String {
    let who = match user {
        Some((name, csrf)) => format!(
            "<form id=\"logout\" method=\"post\" action=\"/web/logout\"><span id=\"user\">{}</span> \
             <input type=\"hidden\" name=\"{}\" value=\"{}\"><button type=\"submit\">Sign out</button></form>",
            esc(name),
            super::csrf::FIELD,
            esc(csrf)
        ),
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · sigbridge serve</title><link rel=\"stylesheet\" href=\"/web/style.css\"></head>\
         <body><header><h1><a href=\"/web/requests\">sigbridge serve</a></h1>{who}</header>\
         <main><h2>{t}</h2>\n{body}</main></body></html>\n",
        t = esc(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        let p = page("<b>", Some(("<i>", "\"t")), "");
        assert!(
            !p.contains("<b>") && !p.contains("<i>") && !p.contains("\"t\""),
            "{p}"
        );
    }
}
