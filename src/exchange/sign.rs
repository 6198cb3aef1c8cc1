//! Signing of SIGNED endpoints as Binance documents it: `signature` is the
//! lower-case hex HMAC-SHA256 of `totalParams` (query string followed by the
//! body) keyed with the API secret.

use ring::hmac;

/// The hex HMAC-SHA256 of `payload` keyed with `secret`.
pub fn signature(secret: &[u8], payload: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, payload.as_bytes());
    let mut out = String::with_capacity(64);
    for b in tag.as_ref() {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

/// Form-encodes `params` in the given order (the order is part of what is
/// signed, so it must be the order sent).
pub fn encode(params: &[(String, String)]) -> String {
    let mut s = String::new();
    for (k, v) in params {
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(&url::form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>());
        s.push('=');
        s.push_str(&url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Binance's worked example for POST /api/v3/order (HMAC keys).
    #[test]
    fn binance_documented_example() {
        let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        let q = encode(&p(&[
            ("symbol", "LTCBTC"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "1"),
            ("price", "0.1"),
            ("recvWindow", "5000"),
            ("timestamp", "1499827319559"),
        ]));
        assert_eq!(
            q,
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
        );
        assert_eq!(
            signature(secret.as_bytes(), &q),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
    }

    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(
            encode(&p(&[("symbols", "[\"A\",\"B\"]")])),
            "symbols=%5B%22A%22%2C%22B%22%5D"
        );
    }
}
