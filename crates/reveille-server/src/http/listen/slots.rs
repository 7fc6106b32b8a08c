//! Who holds the connection slots: at most `max` connections at once, at most `per_ip` of them
//! from one address (so one host, however many connections it opens, leaves room for the
//! others), and the last `reserved` only for requests that carry a credential (so a flood from
//! many hosts still leaves room for the senders and devices Reveille exists for).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots of one server.
pub struct Slots {
    free: Arc<Semaphore>,
    per_ip: usize,
    reserved: usize,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was not given a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot is taken.
    Full,
    /// Its address holds its whole share.
    Share,
}

/// The slot a connection holds, shared by its requests; a WebSocket handler keeps it for the
/// socket's life.
#[derive(Clone)]
pub struct Slot(Arc<Held>);

struct Held {
    _permit: OwnedSemaphorePermit,
    slots: Arc<Slots>,
    ip: IpAddr,
    reserved: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut by_ip = self.slots.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

impl Slot {
    /// Whether this is one of the last slots, kept for requests with a credential.
    pub fn reserved(&self) -> bool {
        self.0.reserved
    }
}

impl Slots {
    /// `per_ip` 0: no share per address (behind a proxy every connection comes from one).
    pub fn new(max: usize, per_ip: usize, reserved: usize) -> Arc<Self> {
        Arc::new(Self {
            free: Arc::new(Semaphore::new(max)),
            per_ip,
            reserved: reserved.min(max.saturating_sub(1)),
            by_ip: Mutex::default(),
        })
    }

    /// A slot for a connection from `ip`, if it may have one. IPv6 addresses share by their
    /// /64 (one host or one customer hands out a whole /64 to itself).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let ip = match ip {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
            v4 => v4,
        };
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        let held = by_ip.get(&ip).copied().unwrap_or(0);
        if self.per_ip > 0 && held >= self.per_ip {
            return Err(Refused::Share);
        }
        let permit = self.free.clone().try_acquire_owned().map_err(|_| Refused::Full)?;
        let reserved = self.free.available_permits() < self.reserved;
        *by_ip.entry(ip).or_default() += 1;
        Ok(Slot(Arc::new(Held { _permit: permit, slots: self.clone(), ip, reserved })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn one_address_gets_its_share_and_the_last_slots_are_reserved() {
        let slots = Slots::new(10, 4, 2);
        let one: Vec<Slot> = (0..4).map(|_| slots.admit(ip(2)).unwrap()).collect();
        assert_eq!(slots.admit(ip(2)).err(), Some(Refused::Share), "its share is 4");
        let others: Vec<Slot> = (0..4).map(|_| slots.admit(ip(3)).unwrap()).collect();
        assert!(one.iter().chain(&others).all(|s| !s.reserved()));
        let last: Vec<Slot> = (0..2).map(|_| slots.admit(ip(4)).unwrap()).collect();
        assert!(last.iter().all(Slot::reserved), "the last two are the reserve");
        assert_eq!(slots.admit(ip(5)).err(), Some(Refused::Full));
        drop(one);
        assert!(slots.admit(ip(2)).is_ok(), "a freed slot is the address's again");
    }
}
