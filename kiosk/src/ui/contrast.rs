//! Every pair of text and background colours the kiosk's screens use reads at a contrast of at
//! least 4.5:1 (WCAG 1.4.3), computed from the theme (`ui/components/theme.slint`) and the few
//! colours the components write themselves.

use std::collections::HashMap;

fn theme() -> HashMap<String, [u8; 3]> {
    let text = include_str!("../../ui/components/theme.slint");
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line
                .trim()
                .strip_prefix("out property <color> ")?
                .split_once(':')?;
            Some((
                name.trim().to_owned(),
                hex(rest.trim().trim_end_matches(';')),
            ))
        })
        .collect()
}

fn hex(text: &str) -> [u8; 3] {
    let h = text.trim_start_matches('#');
    let byte = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).expect("a hex colour");
    [byte(0), byte(2), byte(4)]
}

fn luminance([r, g, b]: [u8; 3]) -> f64 {
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
}

fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[test]
fn every_text_on_its_background_reads_at_four_and_a_half_to_one() {
    let t = theme();
    let c = |name: &str| -> [u8; 3] { t.get(name).copied().unwrap_or_else(|| hex(name)) };
    // (text, background, where)
    let pairs = [
        ("ink", "paper", "every page"),
        ("ink", "mist", "the office's list"),
        ("ink", "#fff4e0", "changed rows, the time warning"),
        ("amber", "#fff4e0", "news heading"),
        ("paper", "blue", "primary buttons"),
        ("paper", "blue-dark", "a pressed primary button"),
        ("blue-dark", "paper", "buttons"),
        ("blue-dark", "mist", "a pressed button"),
        ("paper", "green", "status bar online"),
        ("paper", "amber", "status bar offline"),
        ("red", "#fde7ea", "an error message"),
        ("green", "#e6f4ea", "a message"),
        ("ink", "#e6f4ea", "a ready answer"),
        ("ink", "#fde7ea", "a refused answer"),
        ("#5c6670", "paper", "a date field's hint"),
        ("#5c6670", "#e6e9ed", "a disabled button"),
        ("paper", "red", "the no-answer pictogram"),
    ];
    for (text, background, place) in pairs {
        let ratio = contrast(c(text), c(background));
        assert!(
            ratio >= 4.5,
            "{place}: {text} on {background} is {ratio:.2}:1"
        );
    }
}
