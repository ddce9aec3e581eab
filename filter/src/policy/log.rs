//! Rate-limited policy log lines: a violation storm must not flood Envoy's log. Per VM (one per
//! worker thread), so no locking; lines beyond the rate are counted and summarised.

use std::cell::Cell;

thread_local! {
    static WINDOW: Cell<(u64, u32, u64)> = const { Cell::new((0, 0, 0)) };
}

/// Whether a policy line may be written now (`now_micros` from the host clock) at `per_second`
/// lines per second. Returns the lines suppressed since the last written one, or `None` to
/// suppress this one.
pub fn admit(now_micros: Option<u64>, per_second: u32) -> Option<u64> {
    WINDOW.with(|w| {
        let (start, written, suppressed) = w.get();
        let now = now_micros.unwrap_or(0);
        let (start, written) = if now.saturating_sub(start) >= 1_000_000 { (now, 0) } else { (start, written) };
        if written < per_second {
            w.set((start, written + 1, 0));
            Some(suppressed)
        } else {
            w.set((start, written, suppressed + 1));
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_lines_per_second_and_reports_suppressed() {
        assert_eq!(admit(Some(5_000_000), 2), Some(0));
        assert_eq!(admit(Some(5_100_000), 2), Some(0));
        assert_eq!(admit(Some(5_200_000), 2), None);
        assert_eq!(admit(Some(5_300_000), 2), None);
        assert_eq!(admit(Some(6_100_000), 2), Some(2));
    }
}
