//! zrepl's retention grid: `1x1h(keep=all) | 24x1h | 14x1d`.
//!
//! Each `|`-separated section `N x LENGTH [(keep=K|all)]` lays N consecutive intervals
//! of LENGTH end to end, the first section starting at now and each next one where the
//! previous ends, going back in time. In each interval the **oldest** K snapshots are
//! kept (K = 1 unless given; `keep=all` keeps every one), as zrepl does. A snapshot older
//! than the whole grid is not kept by it.
//!
//! zrepl counts the grid back from the newest snapshot; cairn counts it back from now,
//! so that pruning twice at the same moment never prunes more the second time. `cairn
//! policy run` takes its snapshot before it prunes, so after downtime the fresh snapshot
//! still sits in the first interval.

use std::fmt;
use std::str::FromStr;

use jiff::SignedDuration;

use crate::error::{Error, Result};
use crate::span::{duration_problem, format_duration};

/// One section: `count` intervals of `length`, keeping `keep` per interval (`None`: all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub count: u32,
    pub length: SignedDuration,
    pub keep: Option<u32>,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.count, format_duration(self.length))?;
        match self.keep {
            None => write!(f, "(keep=all)"),
            Some(1) => Ok(()),
            Some(k) => write!(f, "(keep={k})"),
        }
    }
}

/// A parsed grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    pub sections: Vec<Section>,
}

impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.sections.iter().map(Section::to_string).collect();
        f.write_str(&parts.join(" | "))
    }
}

fn parse_section(input: &str, part: &str) -> Result<Section> {
    let bad = |problem: String| Error::grid(input, format!("{part:?}: {problem}"));
    let (head, keep) = match part.split_once('(') {
        Some((head, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| bad("missing ')' after keep=".into()))?;
            let value = inner
                .split_once('=')
                .filter(|(k, _)| k.trim() == "keep")
                .map(|(_, v)| v.trim())
                .ok_or_else(|| bad(format!("{inner:?}: expected keep=all or keep=N")))?;
            let keep =
                match value {
                    "all" => None,
                    n => Some(n.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        bad(format!("keep={n}: expected all or a number above 0"))
                    })?),
                };
            (head.trim(), keep)
        }
        None => (part, Some(1)),
    };
    let (count, length) = head
        .split_once('x')
        .ok_or_else(|| bad("expected COUNTxLENGTH, e.g. 24x1h".into()))?;
    let count = count
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=1_000_000).contains(n))
        .ok_or_else(|| {
            bad(format!(
                "count {:?}: expected a number from 1 to 1000000",
                count.trim()
            ))
        })?;
    let length =
        duration_problem(length.trim()).map_err(|problem| bad(format!("length {problem}")))?;
    if length.is_zero() {
        return Err(bad("the interval length must be longer than zero".into()));
    }
    Ok(Section {
        count,
        length,
        keep,
    })
}

impl FromStr for Grid {
    type Err = Error;

    fn from_str(input: &str) -> Result<Grid> {
        if input.trim().is_empty() {
            return Err(Error::grid(
                input,
                "empty; e.g. 1x1h(keep=all) | 24x1h | 14x1d",
            ));
        }
        let sections = input
            .split('|')
            .map(|part| {
                let part = part.trim();
                if part.is_empty() {
                    return Err(Error::grid(input, "an empty section between '|'"));
                }
                parse_section(input, part)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Grid { sections })
    }
}

impl Grid {
    /// The interval an age (now minus creation time; negative counts as 0) falls in:
    /// (section index, interval index within it), or `None` beyond the grid.
    pub fn locate(&self, age: SignedDuration) -> Option<(usize, u64)> {
        let mut age = age.as_secs().max(0) as u128;
        for (i, s) in self.sections.iter().enumerate() {
            let len = s.length.as_secs() as u128;
            let span = len * s.count as u128;
            if age < span {
                return Some((i, (age / len) as u64));
            }
            age -= span;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_zrepl_grids() {
        let g: Grid = "1x1h(keep=all) | 24x1h | 14x1d".parse().unwrap();
        assert_eq!(g.sections.len(), 3);
        assert_eq!(g.sections[0].keep, None);
        assert_eq!(
            g.sections[1],
            Section {
                count: 24,
                length: SignedDuration::from_hours(1),
                keep: Some(1)
            }
        );
        assert_eq!(g.to_string(), "1x1h(keep=all) | 24x1h | 14x1d");
        let g: Grid = "3x15m(keep=2)|6x4h".parse().unwrap();
        assert_eq!(g.to_string(), "3x15m(keep=2) | 6x4h");
    }

    #[test]
    fn locates_ages() {
        let g: Grid = "1x1h(keep=all) | 24x1h | 14x1d".parse().unwrap();
        let h = SignedDuration::from_hours;
        assert_eq!(g.locate(SignedDuration::from_secs(-5)), Some((0, 0)));
        assert_eq!(g.locate(h(0)), Some((0, 0)));
        assert_eq!(g.locate(h(1)), Some((1, 0)));
        assert_eq!(g.locate(h(24)), Some((1, 23)));
        assert_eq!(g.locate(h(25)), Some((2, 0)));
        assert_eq!(g.locate(h(25 + 14 * 24 - 1)), Some((2, 13)));
        assert_eq!(g.locate(h(25 + 14 * 24)), None);
    }

    #[test]
    fn errors_point_at_the_bad_section() {
        let err = |s: &str| s.parse::<Grid>().unwrap_err().to_string();
        assert!(
            err("1x1h | 24y1h").contains("\"24y1h\": expected COUNTxLENGTH"),
            "{}",
            err("1x1h | 24y1h")
        );
        assert!(
            err("1x1h | 24x1y").contains("\"24x1y\": length \"1y\": unknown unit 'y'"),
            "{}",
            err("1x1h | 24x1y")
        );
        assert!(err("0x1h").contains("count \"0\""));
        assert!(err("1x0h").contains("longer than zero"));
        assert!(err("1x1h(keep=none)").contains("keep=none: expected all or a number"));
        assert!(err("1x1h(keep=all").contains("missing ')'"));
        assert!(err("1x1h(size=1)").contains("expected keep=all or keep=N"));
        assert!(err("1x1h || 2x1d").contains("empty section"));
        assert!(err(" ").contains("empty"));
    }
}
