//! The end-to-end suites against the QEMU token reached over UART0 instead of its packet link:
//! the serial byte stream the USB token's CDC-ACM link shares, through QEMU's UART model. Each
//! suite has its own QEMU, killed when the test ends. Needs `qemu-system-arm`.

use pkms_lib::launcher::Link;
use pkms_tests::harness::Qemu;

pkms_tests::conformance_suites!(Qemu::over(Link::Uart));
