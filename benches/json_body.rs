//! A realistic JSON API response for the compression benchmarks, shared by the criterion
//! bench (`compress.rs`) and the load origin (`origin.rs`, `GET /json`): a page of orders
//! with ids, timestamps, names, e-mail addresses, prices and tags, from a fixed-seed
//! generator (the same bytes on every run). Unlike a repeated record it mixes repetitive
//! keys with high-entropy values, as real API bodies do.

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Camille", "Louis", "Chloé", "Hugo", "Léa", "Gabriel", "Emma", "Arthur", "Jade", "Jules",
    "Alice", "Raphaël", "Inès", "Adam", "Lina", "Nathan", "Zoé", "Lucas", "Manon", "Tom",
];
const LAST: &[&str] = &[
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
];
const DOMAINS: &[&str] = &["example.com", "mail.test", "corp.example", "shop.test"];
const STATUS: &[&str] = &[
    "pending",
    "paid",
    "shipped",
    "delivered",
    "refunded",
    "cancelled",
];
const TAGS: &[&str] = &[
    "gift", "priority", "b2b", "promo", "fragile", "repeat", "eu", "export",
];
const PRODUCTS: &[&str] = &[
    "Linen shirt",
    "Oak desk lamp",
    "Espresso cups (set of 4)",
    "Wool scarf",
    "Trail shoes",
    "Notebook A5 dotted",
    "Cast-iron pan 28 cm",
    "Bluetooth speaker",
    "Yoga mat",
    "Tea sampler",
];

fn order(rng: &mut Rng, i: u64) -> String {
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let mut items = Vec::new();
    let mut total = 0u64;
    for _ in 0..1 + rng.below(3) {
        let price = 199 + rng.below(20_000);
        let qty = 1 + rng.below(4);
        total += price * qty;
        items.push(format!(
            r#"{{"sku":"SKU-{:05}","name":"{}","qty":{qty},"unit_price":{}.{:02}}}"#,
            rng.below(100_000),
            rng.pick(PRODUCTS),
            price / 100,
            price % 100
        ));
    }
    let tags: Vec<String> = (0..rng.below(3))
        .map(|_| format!("\"{}\"", rng.pick(TAGS)))
        .collect();
    format!(
        concat!(
            r#"{{"id":"{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}","number":{},"#,
            r#""created_at":"2026-{:02}-{:02}T{:02}:{:02}:{:02}Z","status":"{}","#,
            r#""customer":{{"id":{},"name":"{} {}","email":"{}.{}{}@{}","country":"{}"}},"#,
            r#""items":[{}],"total":{}.{:02},"currency":"EUR","tags":[{}],"notes":{}}}"#
        ),
        rng.next() as u32,
        rng.below(1 << 16),
        rng.below(1 << 12),
        0x8000 + rng.below(1 << 14),
        rng.next() & 0xFFFF_FFFF_FFFF,
        100_000 + i,
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.pick(STATUS),
        1 + rng.below(50_000),
        first,
        last,
        first.to_lowercase(),
        last.to_lowercase(),
        rng.below(100),
        rng.pick(DOMAINS),
        rng.pick(&["FR", "BE", "DE", "ES", "IT", "NL", "CH"]),
        items.join(","),
        total / 100,
        total % 100,
        tags.join(","),
        if rng.below(4) == 0 {
            "\"leave at the door\""
        } else {
            "null"
        },
    )
}

/// A JSON document of exactly `size` bytes (for sizes above a few hundred bytes): an object
/// with a `data` array of orders, padded inside the last string to the exact length.
pub(crate) fn json_body(size: usize) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = String::from(r#"{"data":["#);
    let tail = |n: u64| format!(r#"],"meta":{{"page":1,"per_page":{n},"next":"{}"}}}}"#, "");
    let mut n = 0;
    loop {
        let o = order(&mut rng, n);
        if out.len() + o.len() + 1 + tail(n + 1).len() + 8 > size {
            break;
        }
        if n > 0 {
            out.push(',');
        }
        out.push_str(&o);
        n += 1;
    }
    let end = tail(n);
    let pad = size.saturating_sub(out.len() + end.len());
    // The padding goes into `next`: a cursor-like value of the right length.
    let cursor: String = (0..pad)
        .map(|_| (b'a' + rng.below(26) as u8) as char)
        .collect();
    out.push_str(&end.replace(r#""next":"""#, &format!(r#""next":"{cursor}""#)));
    out.into_bytes()
}
