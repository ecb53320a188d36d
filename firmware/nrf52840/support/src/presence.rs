//! User presence: a debounced press of the board's button within a timeout.
//!
//! The press must be a fresh one: the button has to be seen released during the wait and then
//! held for [`DEBOUNCE_MS`]. A button held down before the request (or stuck, or taped down) does
//! not approve anything. While waiting, the LED blinks every [`BLINK_MS`] so the user knows a
//! touch is wanted. The wait ends early, as a time-out, when the board reports it cancelled (on
//! the token: the host that sent the request has gone).

use pkms_firmware::UserPresence;

/// How long the button must stay pressed to count.
pub const DEBOUNCE_MS: u64 = 20;
/// LED toggle period while waiting for a press.
pub const BLINK_MS: u64 = 125;

/// What waiting for a press needs from the board.
pub trait PresenceInput {
    /// Milliseconds from a monotonic clock.
    fn now_ms(&mut self) -> u64;
    /// Whether the button is pressed now.
    fn pressed(&mut self) -> bool;
    /// Waits a little (about a millisecond) before the next look at the button.
    fn pause(&mut self);
    /// Sets the LED (blinking while waiting; left off afterwards).
    fn led(&mut self, on: bool);
    /// Whether to stop waiting now (nobody is left to receive the answer). Default: never.
    fn cancelled(&mut self) -> bool {
        false
    }
}

/// Waits at most `timeout_ms` for a fresh, debounced press. Returns
/// [`UserPresence::Confirmed`] or [`UserPresence::TimedOut`].
pub fn wait_for_press(input: &mut impl PresenceInput, timeout_ms: u32) -> UserPresence {
    let start = input.now_ms();
    let deadline = start.saturating_add(timeout_ms as u64);
    let mut seen_released = false;
    let mut pressed_since: Option<u64> = None;
    let mut led_on = false;
    let result = loop {
        let now = input.now_ms();
        if now >= deadline || input.cancelled() {
            break UserPresence::TimedOut;
        }
        let blink = ((now - start) / BLINK_MS).is_multiple_of(2);
        if blink != led_on {
            led_on = blink;
            input.led(led_on);
        }
        if input.pressed() {
            if seen_released {
                let since = *pressed_since.get_or_insert(now);
                if now - since >= DEBOUNCE_MS {
                    break UserPresence::Confirmed;
                }
            }
        } else {
            seen_released = true;
            pressed_since = None;
        }
        input.pause();
    };
    input.led(false);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A scripted button: `presses` lists [from, to) millisecond spans (from the start) during
    /// which the button is down. Each pause advances the clock by 1 ms.
    struct Script {
        now: u64,
        presses: Vec<(u64, u64)>,
        led_changes: usize,
        led: bool,
        cancel_at: Option<u64>,
    }

    impl Script {
        fn new(presses: &[(u64, u64)]) -> Self {
            Script {
                now: 1000,
                presses: presses.iter().map(|&(a, b)| (a + 1000, b + 1000)).collect(),
                led_changes: 0,
                led: false,
                cancel_at: None,
            }
        }
    }

    impl PresenceInput for Script {
        fn now_ms(&mut self) -> u64 {
            self.now
        }
        fn pressed(&mut self) -> bool {
            self.presses.iter().any(|&(a, b)| (a..b).contains(&self.now))
        }
        fn pause(&mut self) {
            self.now += 1;
        }
        fn led(&mut self, on: bool) {
            self.led = on;
            self.led_changes += 1;
        }
        fn cancelled(&mut self) -> bool {
            self.cancel_at.is_some_and(|t| self.now >= t + 1000)
        }
    }

    #[test]
    fn nobody_pressing_times_out_at_the_deadline() {
        let mut s = Script::new(&[]);
        assert_eq!(wait_for_press(&mut s, 2000), UserPresence::TimedOut);
        assert_eq!(s.now, 3000, "waited exactly the timeout");
        assert!(!s.led, "LED left off");
        assert!(s.led_changes >= 2000 / BLINK_MS as usize, "LED blinked while waiting");
    }

    #[test]
    fn a_press_within_the_timeout_confirms() {
        let mut s = Script::new(&[(500, 900)]);
        assert_eq!(wait_for_press(&mut s, 2000), UserPresence::Confirmed);
        assert_eq!(s.now, 1000 + 500 + DEBOUNCE_MS, "confirmed once debounced");
        assert!(!s.led);
    }

    #[test]
    fn a_bounce_shorter_than_the_debounce_time_does_not_count() {
        let mut s = Script::new(&[(100, 105), (200, 210), (300, 319)]);
        assert_eq!(wait_for_press(&mut s, 1000), UserPresence::TimedOut);
    }

    #[test]
    fn a_button_held_from_before_the_request_does_not_approve() {
        let mut s = Script::new(&[(0, 5000)]);
        assert_eq!(wait_for_press(&mut s, 1000), UserPresence::TimedOut);
        // Released, then pressed again: that is a fresh press.
        let mut s = Script::new(&[(0, 300), (400, 600)]);
        assert_eq!(wait_for_press(&mut s, 1000), UserPresence::Confirmed);
    }

    #[test]
    fn a_press_that_is_not_debounced_by_the_deadline_times_out() {
        let mut s = Script::new(&[(990, 2000)]);
        assert_eq!(wait_for_press(&mut s, 1000), UserPresence::TimedOut);
    }

    #[test]
    fn zero_timeout_never_confirms() {
        let mut s = Script::new(&[(0, 100)]);
        assert_eq!(wait_for_press(&mut s, 0), UserPresence::TimedOut);
    }

    #[test]
    fn a_cancelled_wait_stops_early_as_a_time_out() {
        let mut s = Script::new(&[(800, 900)]);
        s.cancel_at = Some(300);
        assert_eq!(wait_for_press(&mut s, 5000), UserPresence::TimedOut);
        assert_eq!(s.now, 1300, "stopped when cancelled, long before the deadline");
        assert!(!s.led);
    }
}
