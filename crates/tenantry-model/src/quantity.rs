//! Kubernetes resource quantities (`500m`, `4Gi`, `1e3`) and quota resource names.

use crate::diagnostic::did_you_mean;

/// A validated, non-negative Kubernetes quantity, kept as written, with the
/// form the API server stores worked out once: derive writes it into every
/// namespace's quota (tens of thousands of times at 10,000 users).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    // Shared text: each user's quota map starts as a copy of the platform's.
    written: std::sync::Arc<str>,
    canonical: std::sync::Arc<str>,
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

impl Quantity {
    /// Parse a quantity with the grammar of `k8s.io/apimachinery/pkg/api/resource`.
    pub fn parse(text: &str) -> Result<Quantity, String> {
        let body = text.strip_prefix('+').unwrap_or(text);
        if body.starts_with('-') {
            return Err(format!("`{text}` is negative; quota values must be zero or more"));
        }
        let number_end = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(body.len());
        let (number, suffix) = body.split_at(number_end);
        let digits_ok = {
            let mut parts = number.splitn(2, '.');
            let whole = parts.next().unwrap_or("");
            let fraction = parts.next();
            let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
            !number.is_empty() && number != "." && all_digits(whole) && fraction.is_none_or(all_digits)
        };
        if !digits_ok {
            return Err(format!("`{text}` does not start with a number"));
        }
        let suffix_ok = matches!(
            suffix,
            "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"
        ) || is_decimal_exponent(suffix);
        if !suffix_ok {
            let hint = match suffix {
                "K" | "KB" | "kb" | "KiB" => " (did you mean `Ki` or `k`?)",
                "MB" | "mb" | "MiB" => " (did you mean `Mi` or `M`?)",
                "GB" | "gb" | "GiB" | "g" => " (did you mean `Gi` or `G`?)",
                "TB" | "tb" | "TiB" => " (did you mean `Ti` or `T`?)",
                _ => "",
            };
            return Err(format!("`{text}` has an unknown unit `{suffix}`{hint}"));
        }
        let written: std::sync::Arc<str> = std::sync::Arc::from(text);
        let canonical = canonical(text).map_or_else(|| std::sync::Arc::clone(&written), std::sync::Arc::from);
        Ok(Quantity { written, canonical })
    }

    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// The form the Kubernetes API server stores (`0.5` → `500m`, `1000` →
    /// `1k`, `1024Mi` → `1Gi`), so desired and observed compare equal.
    /// Exponent forms and values too large to compute are kept as written.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

const DECIMAL_SUFFIXES: &[(&str, i32)] =
    &[("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3), ("", 0), ("m", -3), ("u", -6), ("n", -9)];
const BINARY_SUFFIXES: &[(&str, u32)] = &[("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)];

fn canonical(text: &str) -> Option<String> {
    let body = text.strip_prefix('+').unwrap_or(text);
    let number_end = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(body.len());
    let (number, suffix) = body.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{whole}{fraction}");
    let mantissa: u128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    let scale = i32::try_from(fraction.len()).ok()?;
    if let Some(&(_, shift)) = BINARY_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        let bytes_scaled = mantissa.checked_mul(1u128.checked_shl(shift)?)?;
        let divisor = 10u128.checked_pow(u32::try_from(scale).ok()?)?;
        if bytes_scaled.is_multiple_of(divisor) {
            let bytes = bytes_scaled / divisor;
            if bytes == 0 {
                return Some("0".to_string());
            }
            for (name, power) in BINARY_SUFFIXES {
                let unit = 1u128 << power;
                if bytes.is_multiple_of(unit) {
                    return Some(format!("{}{name}", bytes / unit));
                }
            }
            return Some(bytes.to_string());
        }
        return decimal(bytes_scaled, -scale);
    }
    let exponent = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix)?.1;
    decimal(mantissa, exponent - scale)
}

/// `mantissa × 10^exponent` with the largest decimal suffix that keeps it whole
/// (below nano, rounded up as Kubernetes does).
fn decimal(mut mantissa: u128, mut exponent: i32) -> Option<String> {
    if mantissa == 0 {
        return Some("0".to_string());
    }
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exponent += 1;
    }
    if exponent < -9 {
        let divisor = 10u128.checked_pow(u32::try_from(-9 - exponent).ok()?)?;
        return Some(format!("{}n", mantissa.div_ceil(divisor)));
    }
    let (name, power) = DECIMAL_SUFFIXES.iter().find(|(_, power)| *power <= exponent)?;
    let scaled = mantissa.checked_mul(10u128.checked_pow(u32::try_from(exponent - power).ok()?)?)?;
    Some(format!("{scaled}{name}"))
}

fn is_decimal_exponent(suffix: &str) -> bool {
    let Some(rest) = suffix.strip_prefix(['e', 'E']) else { return false };
    let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

/// A quantity as the API server writes it (`500m`, `4Gi`, `1e3`, `20`) as a
/// number — for comparing quota usage with its limit; `None` when it is not
/// a quantity.
pub fn quantity_value(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let power: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(power)
        }
    };
    Some(number * factor)
}

/// The ResourceQuota resource names Kubernetes documents (core and object count).
pub const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "services.loadbalancers",
    "services.nodeports",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "replicationcontrollers",
    "resourcequotas",
];

/// Whether `name` is a ResourceQuota resource name; on failure, a message with a hint.
pub fn check_quota_resource(name: &str) -> Result<(), String> {
    if STANDARD_QUOTA_RESOURCES.contains(&name) {
        return Ok(());
    }
    // Object counts (`count/deployments.apps`), extended resources
    // (`requests.nvidia.com/gpu`) and storage-class scoped names all contain a
    // slash and are qualified names; accept them when well-formed.
    if let Some((prefix, rest)) = name.split_once('/') {
        let qualified = |s: &str| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
                && s.starts_with(|c: char| c.is_ascii_alphanumeric())
                && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        };
        if qualified(prefix) && qualified(rest) {
            return Ok(());
        }
    }
    let hint = match did_you_mean(name, STANDARD_QUOTA_RESOURCES.iter().copied()) {
        Some(candidate) => format!("did you mean `{candidate}`?"),
        None => format!(
            "use one of {} or a qualified name such as `count/deployments.apps`",
            STANDARD_QUOTA_RESOURCES.join(", ")
        ),
    };
    Err(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_the_apiserver_writes_them() {
        assert_eq!(quantity_value("20"), Some(20.0));
        assert_eq!(quantity_value("500m"), Some(0.5));
        assert_eq!(quantity_value("4Gi"), Some(4.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(quantity_value("1.5k"), Some(1500.0));
        assert_eq!(quantity_value("1e3"), Some(1000.0));
        assert_eq!(quantity_value("12Qi"), None);
        assert_eq!(quantity_value(""), None);
    }

    #[test]
    fn accepts_kubernetes_quantities() {
        for text in ["2", "500m", "4Gi", "0.5", "1.5Gi", "1e3", "20", "+1", "128974848", "129e6", ".5"] {
            assert!(Quantity::parse(text).is_ok(), "{text} should parse");
        }
    }

    #[test]
    fn refuses_bad_quantities_with_reason() {
        assert!(Quantity::parse("4GB").unwrap_err().contains("did you mean `Gi`"));
        assert!(Quantity::parse("-1").unwrap_err().contains("negative"));
        assert!(Quantity::parse("lots").unwrap_err().contains("does not start with a number"));
        assert!(Quantity::parse("").is_err());
        assert!(Quantity::parse(".").is_err());
        assert!(Quantity::parse("1.2.3").is_err());
        assert!(Quantity::parse("4 Gi").is_err());
    }

    #[test]
    fn canonical_forms_match_the_api_server() {
        for (written, stored) in [
            ("0.5", "500m"),
            ("1000", "1k"),
            ("2", "2"),
            ("20", "20"),
            ("1500m", "1500m"),
            ("2000m", "2"),
            ("4Gi", "4Gi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0", "0"),
            ("128974848", "128974848"),
            ("0.1Ki", "102400m"),
            ("100m", "100m"),
        ] {
            assert_eq!(Quantity::parse(written).unwrap().canonical(), stored, "{written}");
        }
    }

    #[test]
    fn quota_names_hint_near_misses() {
        assert!(check_quota_resource("requests.cpu").is_ok());
        assert!(check_quota_resource("count/deployments.apps").is_ok());
        assert!(check_quota_resource("requests.nvidia.com/gpu").is_ok());
        assert_eq!(check_quota_resource("requests.cpus").unwrap_err(), "did you mean `requests.cpu`?");
        assert_eq!(check_quota_resource("pod").unwrap_err(), "did you mean `pods`?");
        assert!(check_quota_resource("banana").unwrap_err().starts_with("use one of"));
    }
}
