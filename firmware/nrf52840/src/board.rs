//! The board seam on the nRF52840: uptime from the RTC-driven embassy-time clock, the button for
//! user presence, the LED for activity.

use embassy_nrf::gpio::{Input, Output};
use embassy_time::{block_for, Duration, Instant};
use pkms_firmware::{Board, BoardInfo, UserPresence};
use pkms_nrf52840_support::link::Link;
use pkms_nrf52840_support::presence::{wait_for_press, PresenceInput};
use pkms_protocol::Platform;

use crate::layout;

/// Button (active low, pulled up) and LED (active low), and the USB link (to notice a host that
/// gives up while the token waits for the button).
pub struct NrfBoard {
    button: Input<'static>,
    led: Output<'static>,
    link: &'static Link,
    waiting_for_session: u32,
}

impl NrfBoard {
    /// The board over its button and LED pins.
    pub fn new(button: Input<'static>, led: Output<'static>, link: &'static Link) -> Self {
        let mut board = NrfBoard { button, led, link, waiting_for_session: 0 };
        board.set_led(false);
        board
    }

    fn set_led(&mut self, on: bool) {
        if on {
            self.led.set_low()
        } else {
            self.led.set_high()
        }
    }
}

impl Board for NrfBoard {
    fn uptime_ms(&mut self) -> u64 {
        Instant::now().as_millis()
    }

    /// Blinks the LED and waits for a fresh press of button 1 (DK) or SW1 (Dongle). Gives up
    /// early (`TimedOut`) when the USB session of the request ends: nobody would get the answer.
    fn user_presence(&mut self, timeout_ms: u32) -> UserPresence {
        self.waiting_for_session = self.link.active_session();
        let result = wait_for_press(self, timeout_ms);
        self.set_led(true); // still busy with the request
        result
    }

    fn info(&self) -> BoardInfo {
        BoardInfo {
            name: layout::BOARD,
            platform: Platform::Hardware,
            entropy_source: layout::ENTROPY_SOURCE,
            key_protection: layout::KEY_PROTECTION,
        }
    }

    fn activity(&mut self, busy: bool) {
        self.set_led(busy);
    }
}

impl PresenceInput for NrfBoard {
    fn now_ms(&mut self) -> u64 {
        Instant::now().as_millis()
    }

    fn pressed(&mut self) -> bool {
        self.button.is_low()
    }

    fn pause(&mut self) {
        block_for(Duration::from_millis(1));
    }

    fn led(&mut self, on: bool) {
        self.set_led(on);
    }

    fn cancelled(&mut self) -> bool {
        self.link.active_session() != self.waiting_for_session
    }
}
