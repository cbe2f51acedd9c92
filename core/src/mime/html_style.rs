//! What an HTML part's styling does to its text, as SpamAssassin's HTML tests see it: a
//! stack of text styles (colour, background, font size) opened and closed by tags, and
//! flags for text drawn in a colour too close to its background (`font_low_contrast`),
//! colours that do not parse (`font_invalid_color`), odd font faces (`font_face_bad`) and
//! the largest font size used (`max_size`).

/// A colour as browsers resolve it, or one that does not parse.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Color {
    Rgb(u8, u8, u8),
    Invalid,
}

#[derive(Debug, Clone)]
struct Style {
    tag: String,
    fg: Color,
    bg: Color,
    size: i32,
}

/// Tags that change the text style (and so open a level of the stack).
const STYLE_TAGS: &[&str] = &[
    "body", "font", "table", "tr", "th", "td", "big", "small", "basefont", "marquee", "span", "p",
    "div", "a",
];

/// The HTML style state of one part, fed tags and text in document order.
#[derive(Debug)]
pub struct StyleTracker {
    stack: Vec<Style>,
    basefont: i32,
    pub max_size: i32,
    pub font_face_bad: bool,
    pub font_invalid_color: bool,
    pub font_low_contrast: bool,
}

impl Default for StyleTracker {
    fn default() -> Self {
        StyleTracker {
            stack: vec![Style {
                tag: String::new(),
                fg: Color::Rgb(0, 0, 0),
                bg: Color::Rgb(255, 255, 255),
                size: 3,
            }],
            basefont: 3,
            max_size: 3,
            font_face_bad: false,
            font_invalid_color: false,
            font_low_contrast: false,
        }
    }
}

impl StyleTracker {
    /// An opening tag, `name` lower-case, `attrs` the text after the name.
    pub fn open(&mut self, name: &str, attrs: &str) {
        if name == "font" {
            if let Some(face) = attr(attrs, "face") {
                self.font_face_bad |= !face_ok(&face);
            }
        }
        let tag = if name == "th" { "td" } else { name };
        if !STYLE_TAGS.contains(&tag) {
            return;
        }
        if tag == "basefont" {
            if let Some(n) = attr(attrs, "size").and_then(|s| leading_int(&s)) {
                self.basefont = n;
            }
            return;
        }
        // Optional end tags: a new cell closes the open font/cell, a new row the row (when
        // one of its kind is open at all, as SpamAssassin's `close_table_tag`).
        if (tag == "td" || tag == "tr") && self.stack.iter().any(|s| s.tag == tag) {
            while let Some(top) = self.stack.last().map(|s| s.tag.as_str()) {
                let close = match tag {
                    "td" => top == "font" || top == "td",
                    _ => matches!(top, "font" | "td" | "tr"),
                };
                if !close || self.stack.len() == 1 {
                    break;
                }
                self.stack.pop();
            }
        }
        let mut new = self
            .stack
            .last()
            .cloned()
            .unwrap_or_else(|| Self::default().stack[0].clone());
        new.tag = tag.to_string();
        match tag {
            "big" => new.size += 1,
            "small" => new.size -= 1,
            _ => {
                let allowed: &[&str] = match tag {
                    "body" => &["text", "bgcolor"],
                    "font" => &["color", "size"],
                    "marquee" => &["bgcolor"],
                    "table" | "td" | "tr" => &["bgcolor", "style"],
                    _ => &["style"],
                };
                for name in allowed {
                    let Some(value) = attr(attrs, name) else {
                        continue;
                    };
                    match *name {
                        "text" | "color" => new.fg = parse_color(&value),
                        // SpamAssassin 4.0 reads a `bgcolor` attribute but never applies
                        // it (only CSS backgrounds change the background): text is
                        // measured against the page's white whatever the table's colour,
                        // and its HTML_FONT_LOW_CONTRAST fires on white text in coloured
                        // cells. The rule's meaning is SpamAssassin's, so is this.
                        "bgcolor" => {}
                        "size" => {
                            let v = value.trim_start();
                            if v.starts_with(['+', '-']) {
                                if let Some(n) = leading_int(v) {
                                    new.size = self.basefont + n;
                                }
                            } else if let Some(n) = leading_int(v) {
                                new.size = n;
                            }
                        }
                        _ => apply_css(&value, &mut new, self.stack.last()),
                    }
                }
            }
        }
        self.max_size = self.max_size.max(new.size);
        self.stack.push(new);
    }

    /// A closing tag: closes everything up to the matching open tag, if there is one.
    pub fn close(&mut self, name: &str) {
        let tag = if name == "th" { "td" } else { name };
        if tag == "body" {
            return;
        }
        if let Some(pos) = self.stack.iter().rposition(|s| s.tag == tag) {
            if pos > 0 {
                self.stack.truncate(pos);
            }
        }
    }

    /// Takes in what another part's HTML showed.
    pub fn merge(&mut self, other: &StyleTracker) {
        self.max_size = self.max_size.max(other.max_size);
        self.font_face_bad |= other.font_face_bad;
        self.font_invalid_color |= other.font_invalid_color;
        self.font_low_contrast |= other.font_low_contrast;
    }

    /// Text between tags (entities decoded).
    pub fn text(&mut self, text: &str) {
        if text.chars().all(|c| c.is_whitespace()) {
            return;
        }
        let Some(top) = self.stack.last() else { return };
        match (top.fg, top.bg) {
            (Color::Invalid, Color::Invalid) => self.font_low_contrast = true,
            (Color::Rgb(r1, g1, b1), Color::Rgb(r2, g2, b2)) => {
                let d = |a: u8, b: u8| f64::from(a) - f64::from(b);
                let distance = ((0.2126 * d(r1, r2)).powi(2)
                    + (0.7152 * d(g1, g2)).powi(2)
                    + (0.0722 * d(b1, b2)).powi(2))
                .sqrt();
                // Below 12 the text is very hard to read (SpamAssassin's limit).
                if distance < 12.0 {
                    self.font_low_contrast = true;
                }
            }
            _ => self.font_invalid_color = true,
        }
    }
}

/// `color:` and `background-color:` of a `style` attribute.
fn apply_css(css: &str, style: &mut Style, parent: Option<&Style>) {
    for decl in css.split(';') {
        let Some((prop, value)) = decl.split_once(':') else {
            continue;
        };
        let prop = prop.trim().to_ascii_lowercase();
        let value = value.trim().to_ascii_lowercase();
        let value = value.trim_end_matches("!important").trim();
        let color = match value {
            "inherit" => continue,
            "transparent" => None,
            v => Some(parse_color(v)),
        };
        match prop.as_str() {
            "color" => style.fg = color.unwrap_or(style.bg),
            "background-color" => {
                style.bg = color.unwrap_or_else(|| parent.map_or(style.bg, |p| p.bg))
            }
            "background" => {
                if let Some(c) = value
                    .split_whitespace()
                    .map(parse_color)
                    .find(|c| *c != Color::Invalid)
                {
                    style.bg = c;
                }
            }
            _ => {}
        }
    }
}

/// A colour as written in HTML: a name, `#rgb`/`#rrggbb` (leniently, as browsers read
/// it), or `rgb(r, g, b)` in numbers or percentages.
fn parse_color(value: &str) -> Color {
    let v = value.trim().to_ascii_lowercase();
    if let Ok(i) = NAMED_COLORS.binary_search_by(|(n, _)| n.cmp(&v.as_str())) {
        let c = NAMED_COLORS[i].1;
        return Color::Rgb((c >> 16) as u8, (c >> 8) as u8, c as u8);
    }
    if let Some(inner) = v.strip_prefix("rgb(").and_then(|r| r.strip_suffix(')')) {
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        let channel = |p: &str| -> Option<u8> {
            match p.strip_suffix('%') {
                Some(pct) => pct
                    .parse::<u32>()
                    .ok()
                    .map(|n| (n.min(100) * 255 / 100) as u8),
                None => p.parse::<u32>().ok().map(|n| n.min(255) as u8),
            }
        };
        return match parts.as_slice() {
            [r, g, b] => match (channel(r), channel(g), channel(b)) {
                (Some(r), Some(g), Some(b)) => Color::Rgb(r, g, b),
                _ => Color::Invalid,
            },
            _ => Color::Invalid,
        };
    }
    let Some(hex) = v.strip_prefix('#') else {
        return Color::Invalid;
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Color::Invalid;
    }
    let mut hex: String = hex.chars().take(6).collect();
    if hex.len() > 3 && hex.len() < 6 {
        hex.truncate(3);
    }
    while !hex.len().is_multiple_of(3) || hex.is_empty() {
        hex.push('0');
    }
    if hex.len() == 3 {
        hex = hex.chars().flat_map(|c| [c, c]).collect();
    }
    // Six hex digits: cannot fail to parse.
    let [_, r, g, b] = u32::from_str_radix(&hex, 16).unwrap_or(0).to_be_bytes();
    Color::Rgb(r, g, b)
}

/// A font face list as mail clients write them: names of letters, spaces and hyphens,
/// optionally quoted, separated by commas.
fn face_ok(face: &str) -> bool {
    let f = face.trim().trim_end_matches(';');
    let f = f.strip_prefix('.').unwrap_or(f);
    f.split(',').all(|name| {
        let n = name.trim().trim_matches(['"', '\'']);
        let n = n.strip_suffix(|c: char| c.is_ascii_digit()).unwrap_or(n);
        n.len() >= 2
            && n.starts_with(|c: char| c.is_ascii_alphabetic() || c == ' ')
            && n.ends_with(|c: char| c.is_ascii_alphabetic())
            && n.chars()
                .all(|c| c.is_ascii_alphabetic() || c == ' ' || c == '-')
    })
}

fn leading_int(s: &str) -> Option<i32> {
    let s = s.trim_start();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let digits = digits
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or_default();
    digits.parse::<i32>().ok().map(|n| sign * n)
}

/// The value of attribute `name` in a tag's attribute text (quoted or bare).
pub fn attr(attrs: &str, name: &str) -> Option<String> {
    // Each `=` with the name (any case) before it, white space between allowed: no
    // lowercased copy and no substring search (this runs for every tag and attribute).
    let b = attrs.as_bytes();
    for eq in memchr::memchr_iter(b'=', b) {
        let end = b[..eq]
            .iter()
            .rposition(|c| !c.is_ascii_whitespace())
            .map_or(0, |p| p + 1);
        let Some(start) = end.checked_sub(name.len()) else {
            continue;
        };
        let before_ok = start == 0 || !b[start - 1].is_ascii_alphanumeric() && b[start - 1] != b'-';
        if !before_ok || !b[start..end].eq_ignore_ascii_case(name.as_bytes()) {
            continue;
        }
        // After an ASCII '=': between characters.
        let v = attrs.get(eq + 1..).unwrap_or_default().trim_start();
        let mut chars = v.chars();
        return Some(match chars.next() {
            Some(q @ ('"' | '\'')) => chars.as_str().split(q).next().unwrap_or("").to_string(),
            _ => v
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or("")
                .to_string(),
        });
    }
    None
}

/// Named colours of HTML 4 and CSS 3 (W3C), sorted by name, as 0xRRGGBB.
pub(super) const NAMED_COLORS: &[(&str, u32)] = &[
    ("aliceblue", 0xf0f8ff),
    ("antiquewhite", 0xfaebd7),
    ("aqua", 0x00ffff),
    ("aquamarine", 0x7fffd4),
    ("azure", 0xf0ffff),
    ("beige", 0xf5f5dc),
    ("bisque", 0xffe4c4),
    ("black", 0x000000),
    ("blanchedalmond", 0xffebcd),
    ("blue", 0x0000ff),
    ("blueviolet", 0x8a2be2),
    ("brown", 0xa52a2a),
    ("burlywood", 0xdeb887),
    ("cadetblue", 0x5f9ea0),
    ("chartreuse", 0x7fff00),
    ("chocolate", 0xd2691e),
    ("coral", 0xff7f50),
    ("cornflowerblue", 0x6495ed),
    ("cornsilk", 0xfff8dc),
    ("crimson", 0xdc143c),
    ("cyan", 0x00ffff),
    ("darkblue", 0x00008b),
    ("darkcyan", 0x008b8b),
    ("darkgoldenrod", 0xb8860b),
    ("darkgray", 0xa9a9a9),
    ("darkgreen", 0x006400),
    ("darkgrey", 0xa9a9a9),
    ("darkkhaki", 0xbdb76b),
    ("darkmagenta", 0x8b008b),
    ("darkolivegreen", 0x556b2f),
    ("darkorange", 0xff8c00),
    ("darkorchid", 0x9932cc),
    ("darkred", 0x8b0000),
    ("darksalmon", 0xe9967a),
    ("darkseagreen", 0x8fbc8f),
    ("darkslateblue", 0x483d8b),
    ("darkslategray", 0x2f4f4f),
    ("darkslategrey", 0x2f4f4f),
    ("darkturquoise", 0x00ced1),
    ("darkviolet", 0x9400d3),
    ("deeppink", 0xff1493),
    ("deepskyblue", 0x00bfff),
    ("dimgray", 0x696969),
    ("dimgrey", 0x696969),
    ("dodgerblue", 0x1e90ff),
    ("firebrick", 0xb22222),
    ("floralwhite", 0xfffaf0),
    ("forestgreen", 0x228b22),
    ("fuchsia", 0xff00ff),
    ("gainsboro", 0xdcdcdc),
    ("ghostwhite", 0xf8f8ff),
    ("gold", 0xffd700),
    ("goldenrod", 0xdaa520),
    ("gray", 0x808080),
    ("green", 0x008000),
    ("greenyellow", 0xadff2f),
    ("grey", 0x808080),
    ("honeydew", 0xf0fff0),
    ("hotpink", 0xff69b4),
    ("indianred", 0xcd5c5c),
    ("indigo", 0x4b0082),
    ("ivory", 0xfffff0),
    ("khaki", 0xf0e68c),
    ("lavender", 0xe6e6fa),
    ("lavenderblush", 0xfff0f5),
    ("lawngreen", 0x7cfc00),
    ("lemonchiffon", 0xfffacd),
    ("lightblue", 0xadd8e6),
    ("lightcoral", 0xf08080),
    ("lightcyan", 0xe0ffff),
    ("lightgoldenrodyellow", 0xfafad2),
    ("lightgray", 0xd3d3d3),
    ("lightgreen", 0x90ee90),
    ("lightgrey", 0xd3d3d3),
    ("lightpink", 0xffb6c1),
    ("lightsalmon", 0xffa07a),
    ("lightseagreen", 0x20b2aa),
    ("lightskyblue", 0x87cefa),
    ("lightslategray", 0x778899),
    ("lightslategrey", 0x778899),
    ("lightsteelblue", 0xb0c4de),
    ("lightyellow", 0xffffe0),
    ("lime", 0x00ff00),
    ("limegreen", 0x32cd32),
    ("linen", 0xfaf0e6),
    ("magenta", 0xff00ff),
    ("maroon", 0x800000),
    ("mediumaquamarine", 0x66cdaa),
    ("mediumblue", 0x0000cd),
    ("mediumorchid", 0xba55d3),
    ("mediumpurple", 0x9370db),
    ("mediumseagreen", 0x3cb371),
    ("mediumslateblue", 0x7b68ee),
    ("mediumspringgreen", 0x00fa9a),
    ("mediumturquoise", 0x48d1cc),
    ("mediumvioletred", 0xc71585),
    ("midnightblue", 0x191970),
    ("mintcream", 0xf5fffa),
    ("mistyrose", 0xffe4e1),
    ("moccasin", 0xffe4b5),
    ("navajowhite", 0xffdead),
    ("navy", 0x000080),
    ("oldlace", 0xfdf5e6),
    ("olive", 0x808000),
    ("olivedrab", 0x6b8e23),
    ("orange", 0xffa500),
    ("orangered", 0xff4500),
    ("orchid", 0xda70d6),
    ("palegoldenrod", 0xeee8aa),
    ("palegreen", 0x98fb98),
    ("paleturquoise", 0xafeeee),
    ("palevioletred", 0xdb7093),
    ("papayawhip", 0xffefd5),
    ("peachpuff", 0xffdab9),
    ("peru", 0xcd853f),
    ("pink", 0xffc0cb),
    ("plum", 0xdda0dd),
    ("powderblue", 0xb0e0e6),
    ("purple", 0x800080),
    ("red", 0xff0000),
    ("rosybrown", 0xbc8f8f),
    ("royalblue", 0x4169e1),
    ("saddlebrown", 0x8b4513),
    ("salmon", 0xfa8072),
    ("sandybrown", 0xf4a460),
    ("seagreen", 0x2e8b57),
    ("seashell", 0xfff5ee),
    ("sienna", 0xa0522d),
    ("silver", 0xc0c0c0),
    ("skyblue", 0x87ceeb),
    ("slateblue", 0x6a5acd),
    ("slategray", 0x708090),
    ("slategrey", 0x708090),
    ("snow", 0xfffafa),
    ("springgreen", 0x00ff7f),
    ("steelblue", 0x4682b4),
    ("tan", 0xd2b48c),
    ("teal", 0x008080),
    ("thistle", 0xd8bfd8),
    ("tomato", 0xff6347),
    ("turquoise", 0x40e0d0),
    ("violet", 0xee82ee),
    ("wheat", 0xf5deb3),
    ("white", 0xffffff),
    ("whitesmoke", 0xf5f5f5),
    ("yellow", 0xffff00),
    ("yellowgreen", 0x9acd32),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours() {
        assert_eq!(parse_color("White"), Color::Rgb(255, 255, 255));
        assert_eq!(parse_color("#fff"), Color::Rgb(255, 255, 255));
        assert_eq!(parse_color("#FE0000"), Color::Rgb(254, 0, 0));
        assert_eq!(parse_color("rgb(10, 20, 30)"), Color::Rgb(10, 20, 30));
        assert_eq!(parse_color("rgb(100%, 0%, 0%)"), Color::Rgb(255, 0, 0));
        assert_eq!(parse_color("notacolor"), Color::Invalid);
    }

    #[test]
    fn contrast_invalid_faces_and_sizes() {
        let mut t = StyleTracker::default();
        t.open("body", r##"bgcolor="#ffffff""##);
        t.text("visible");
        assert!(!t.font_low_contrast);
        t.open("font", r##"color="#fefefe" size="+4""##);
        t.text("hidden words");
        assert!(t.font_low_contrast);
        assert_eq!(t.max_size, 7);
        t.close("font");

        let mut t = StyleTracker::default();
        t.open("span", "style='color: blurple'");
        t.text("x");
        assert!(t.font_invalid_color && !t.font_low_contrast);

        let mut t = StyleTracker::default();
        t.open("font", r#"face="Arial, Helvetica, sans-serif""#);
        assert!(!t.font_face_bad);
        t.open("font", "face=\"$%^&\"");
        assert!(t.font_face_bad);

        assert_eq!(
            attr(r#"a data-color="x" color='red'"#, "color").as_deref(),
            Some("red")
        );
        assert_eq!(attr("size=5 face=x", "size").as_deref(), Some("5"));
    }

    /// As SpamAssassin 4.0: a `bgcolor` attribute does not change the background (white
    /// text in a dark cell counts as low contrast against the page), a CSS background
    /// does; a new cell closes an open font only inside a cell.
    #[test]
    fn backgrounds_as_spamassassin_reads_them() {
        let mut t = StyleTracker::default();
        t.open("table", r##"bgcolor="#003333""##);
        t.open("tr", r##"bgcolor="#003333""##);
        t.open("td", "");
        t.open("font", r##"color="#FFFFFF""##);
        t.text("Please fill out the form");
        assert!(t.font_low_contrast);

        let mut t = StyleTracker::default();
        t.open("td", "style=\"background-color: #003333\"");
        t.open("font", r##"color="#FFFFFF""##);
        t.text("readable");
        assert!(!t.font_low_contrast);

        // No cell open: the font stays open across <td>.
        let mut t = StyleTracker::default();
        t.open("font", r##"color="#FFFFFF""##);
        t.open("td", "style=\"background-color: #000000\"");
        t.text("white on black");
        assert!(!t.font_low_contrast);
    }

    /// Attribute text and values with multi-byte characters next to '=', quotes and
    /// digits.
    #[test]
    fn multi_byte_characters_in_attributes() {
        assert_eq!(attr("é=é href=\"é€\" src=ü", "href").as_deref(), Some("é€"));
        assert_eq!(attr("é=é href=\"é€\" src=ü", "src").as_deref(), Some("ü"));
        assert_eq!(attr("title='é€", "title").as_deref(), Some("é€"));
        assert_eq!(attr("size=é>x", "size").as_deref(), Some("é"));
        assert_eq!(attr("é size=", "size").as_deref(), Some(""));
        assert_eq!(attr("€=1", "size"), None);
        assert_eq!(leading_int(" -12é"), Some(-12));
        assert_eq!(leading_int("+é1"), None);
        assert_eq!(parse_color("#é"), Color::Invalid);
        assert_eq!(parse_color("#abcé"), Color::Invalid);
        assert_eq!(parse_color("#12345"), Color::Rgb(0x11, 0x22, 0x33));
        let mut t = StyleTracker::default();
        t.open("font", "size=\"+é\" color=\"é\" face=\"é\"");
        t.text("é");
        assert!(t.font_invalid_color && t.font_face_bad);
    }
}
