//! USB: the device identity, the CDC-ACM function and the task that runs them in the
//! high-priority executor, wired to the shared packet loop
//! [`pkms_nrf52840_support::link::run_usb_side`].

use embassy_futures::select::{select, Either};
use embassy_nrf::usb::vbus_detect::{self, HardwareVbusDetect};
use embassy_nrf::usb::{self, Driver};
use embassy_nrf::{bind_interrupts, pac, peripherals, Peri};
use embassy_usb::class::cdc_acm::{CdcAcmClass, ControlChanged, Receiver, Sender, State};
use embassy_usb::driver::Driver as UsbDriver;
use embassy_usb::Builder;
use pkms_nrf52840_support::link::{
    run_usb_side, Disconnected, LineState, Link, PacketReceiver, PacketSender, PACKET_SIZE,
};
use static_cell::StaticCell;

/// pid.codes' vendor ID (open-source hardware).
pub const USB_VID: u16 = 0x1209;
/// pid.codes' test PID 0x0001, reserved for testing and private use; a released product needs
/// its own PID (see docs/hardware.md). The host (`pkms devices`) looks for this pair.
pub const USB_PID: u16 = 0x0001;
/// iManufacturer and iProduct.
pub const USB_MANUFACTURER: &str = "Pocket KMS";
/// iProduct.
pub const USB_PRODUCT: &str = "Pocket KMS";

bind_interrupts!(struct Irqs {
    USBD => usb::InterruptHandler<peripherals::USBD>;
    CLOCK_POWER => vbus_detect::InterruptHandler;
});

/// The chip's 64-bit factory device ID (FICR.DEVICEID) as 16 hex digits: the USB serial number,
/// so a host can tell several tokens apart.
pub fn serial_number() -> &'static str {
    static SERIAL: StaticCell<[u8; 16]> = StaticCell::new();
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let id = ((pac::FICR.deviceid(1).read() as u64) << 32) | pac::FICR.deviceid(0).read() as u64;
    let buf = SERIAL.init([b'0'; 16]);
    for (i, digit) in buf.iter_mut().enumerate() {
        *digit = HEX[((id >> (60 - 4 * i)) & 0xF) as usize];
    }
    core::str::from_utf8(buf).unwrap_or("0000000000000000")
}

/// Builds the USB device (one CDC-ACM function) and serves it forever: the device's control
/// pipe and the packet loop run side by side.
#[embassy_executor::task]
pub async fn usb_task(
    usbd: Peri<'static, peripherals::USBD>,
    serial: &'static str,
    link: &'static Link,
) -> ! {
    let driver = Driver::new(usbd, Irqs, HardwareVbusDetect::new(Irqs));

    let mut config = embassy_usb::Config::new(USB_VID, USB_PID);
    config.manufacturer = Some(USB_MANUFACTURER);
    config.product = Some(USB_PRODUCT);
    config.serial_number = Some(serial);
    config.max_power = 100;
    config.max_packet_size_0 = 64;
    // Interface association descriptors, as Windows' usbser.sys expects for CDC-ACM.
    config.device_class = 0xEF;
    config.device_sub_class = 0x02;
    config.device_protocol = 0x01;
    config.composite_with_iads = true;

    // These live in the task's static storage, not on a stack.
    let mut config_descriptor = [0u8; 256];
    let mut bos_descriptor = [0u8; 64];
    let mut msos_descriptor = [0u8; 0];
    let mut control_buf = [0u8; 64];
    let mut state = State::new();
    let mut builder = Builder::new(
        driver,
        config,
        &mut config_descriptor,
        &mut bos_descriptor,
        &mut msos_descriptor,
        &mut control_buf,
    );
    let class = CdcAcmClass::new(&mut builder, &mut state, PACKET_SIZE as u16);
    let mut device = builder.build();
    let (sender, receiver, control) = class.split_with_control();
    let (mut rx, mut tx, mut line) = (UsbRx(receiver), UsbTx(sender), UsbLine(control));

    match select(device.run(), run_usb_side(link, &mut rx, &mut tx, &mut line)).await {
        Either::First(never) | Either::Second(never) => never,
    }
}

struct UsbRx<'d, D: UsbDriver<'d>>(Receiver<'d, D>);
struct UsbTx<'d, D: UsbDriver<'d>>(Sender<'d, D>);
struct UsbLine<'d>(ControlChanged<'d>);

impl<'d, D: UsbDriver<'d>> PacketReceiver for UsbRx<'d, D> {
    async fn wait_connection(&mut self) {
        self.0.wait_connection().await
    }

    async fn read_packet(&mut self, buf: &mut [u8; PACKET_SIZE]) -> Result<usize, Disconnected> {
        // A 64-byte buffer cannot overflow on a 64-byte endpoint; any error ends the session.
        self.0.read_packet(buf).await.map_err(|_| Disconnected)
    }
}

impl<'d, D: UsbDriver<'d>> PacketSender for UsbTx<'d, D> {
    async fn write_packet(&mut self, data: &[u8]) -> Result<(), Disconnected> {
        self.0.write_packet(data).await.map_err(|_| Disconnected)
    }
}

impl LineState for UsbLine<'_> {
    async fn changed(&mut self) {
        self.0.control_changed().await
    }

    fn dtr(&self) -> bool {
        self.0.dtr()
    }
}
