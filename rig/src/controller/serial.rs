//! The [`Link`] over a serial port (the `serialport` crate): a USB-serial adapter, a CDC-ACM
//! controller, or a pseudo-terminal in tests.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::Duration;

use serialport::{ClearBuffer, SerialPort};

use super::client::Link;

/// A serial port opened 8N1, no flow control.
pub struct SerialLink {
    port: Box<dyn SerialPort>,
    path: String,
}

impl fmt::Debug for SerialLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialLink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SerialLink {
    /// Opens `path` at `baud`, 8N1, no flow control, for exclusive use.
    pub fn open(path: &str, baud: u32) -> io::Result<SerialLink> {
        let port = serialport::new(path, baud)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(100))
            .open()
            .map_err(io::Error::from)?;
        Ok(SerialLink {
            port,
            path: path.to_owned(),
        })
    }

    /// The device path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Link for SerialLink {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.port.write_all(bytes)?;
        self.port.flush()
    }

    fn receive(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        // serialport treats a zero timeout as "wait forever" on some platforms.
        let timeout = timeout.max(Duration::from_millis(1));
        self.port.set_timeout(timeout).map_err(io::Error::from)?;
        match self.port.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn discard_input(&mut self) -> io::Result<()> {
        self.port.clear(ClearBuffer::Input).map_err(io::Error::from)
    }
}
