//! virtio-rng: fills the guest's buffers from the host's `getrandom`.

use super::queue::Queue;
use super::{
    ActivateError, Activation, DeviceCounters, DeviceEvent, TYPE_RNG, VirtioDevice,
    interrupt::{USED_BUFFER, VirtioInterrupt},
};
use vm_memory::{Bytes, GuestMemoryMmap};

const QUEUE_SIZE: u16 = 256;
/// Most bytes given for one buffer chain.
const MAX_PER_REQUEST: usize = 64 * 1024;

/// The entropy device.
#[derive(Debug, Default)]
pub struct Rng {
    active: Option<(GuestMemoryMmap, Queue, VirtioInterrupt)>,
    counters: DeviceCounters,
}

impl Rng {
    /// An inactive entropy device.
    pub fn new() -> Self {
        Self::default()
    }

    fn process(&mut self) {
        let Some((mem, queue, interrupt)) = &mut self.active else {
            return;
        };
        let mut used_any = false;
        loop {
            let chain = match queue.pop(mem) {
                Ok(Some(chain)) => chain,
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!("virtio-rng queue error: {err}");
                    DeviceCounters::add(&self.counters.errors, 1);
                    interrupt.signal_needs_reset();
                    self.active = None;
                    return;
                }
            };
            let mut written = 0usize;
            for desc in chain.descriptors.iter().filter(|d| d.writable) {
                let want = (desc.len as usize).min(MAX_PER_REQUEST - written);
                if want == 0 {
                    break;
                }
                let mut buf = vec![0u8; want];
                if getrandom(&mut buf).is_err() || mem.write_slice(&buf, desc.addr).is_err() {
                    DeviceCounters::add(&self.counters.errors, 1);
                    break;
                }
                written += want;
            }
            if queue.add_used(mem, chain.head, written as u32).is_err() {
                interrupt.signal_needs_reset();
                self.active = None;
                return;
            }
            DeviceCounters::add(&self.counters.requests, 1);
            DeviceCounters::add(&self.counters.bytes_in, written as u64);
            used_any = true;
        }
        if used_any {
            interrupt.trigger(USED_BUFFER);
        }
    }
}

/// Fills `buf` from the kernel's random source.
fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`, which we own.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        } else {
            filled += n as usize;
        }
    }
    Ok(())
}

impl VirtioDevice for Rng {
    fn device_type(&self) -> u32 {
        TYPE_RNG
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        0
    }

    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn activate(&mut self, mut activation: Activation) -> Result<(), ActivateError> {
        let queue = activation.queues.remove(0);
        if !queue.ready {
            return Err(ActivateError::QueueNotReady(0));
        }
        self.active = Some((activation.memory, queue, activation.interrupt));
        self.process();
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
    }

    fn handle_event(&mut self, event: DeviceEvent) {
        if event == DeviceEvent::Queue(0) {
            self.process();
        }
    }

    fn counters(&self) -> &DeviceCounters {
        &self.counters
    }

    fn describe(&self) -> String {
        "rng".into()
    }

    fn identity(&self) -> String {
        "rng".into()
    }

    fn active_queues(&self) -> Option<Vec<Queue>> {
        self.active.as_ref().map(|(_, q, _)| vec![q.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::irq::CountingIrq;
    use crate::devices::virtio::queue::{DESC_F_WRITE, testing::*};
    use crate::kvm::memory::create_guest_memory;
    use vm_memory::GuestAddress;

    #[test]
    fn fills_writable_buffers_with_random_bytes() {
        let mem = create_guest_memory(4 << 20).unwrap();
        let q = queue_at(&mem, 0x1000, 8);
        write_desc(&mem, &q, 0, 0x10000, 64, DESC_F_WRITE, 0);
        offer(&mem, &q, 0);
        let irq = CountingIrq::default();
        let interrupt = VirtioInterrupt::new(Box::new(irq.clone()), None);
        let mut rng = Rng::new();
        rng.activate(Activation {
            memory: mem.clone(),
            queues: vec![q.clone()],
            acked_features: 0,
            interrupt: interrupt.clone(),
        })
        .unwrap();
        assert_eq!(used(&mem, &q), (1, vec![(0, 64)]));
        let mut bytes = [0u8; 64];
        mem.read_slice(&mut bytes, GuestAddress(0x10000)).unwrap();
        assert!(bytes.iter().any(|b| *b != 0), "random bytes, not zeros");
        assert_eq!(interrupt.status() & USED_BUFFER, USED_BUFFER);
        assert_eq!(irq.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_read_only_chain_gets_nothing_written() {
        let mem = create_guest_memory(4 << 20).unwrap();
        let q = queue_at(&mem, 0x1000, 8);
        write_desc(&mem, &q, 0, 0x10000, 64, 0, 0);
        offer(&mem, &q, 0);
        let interrupt = VirtioInterrupt::new(Box::new(CountingIrq::default()), None);
        let mut rng = Rng::new();
        rng.activate(Activation {
            memory: mem.clone(),
            queues: vec![q.clone()],
            acked_features: 0,
            interrupt,
        })
        .unwrap();
        assert_eq!(used(&mem, &q), (1, vec![(0, 0)]));
    }
}
