//! Where the server's idea of "now" comes from. The agenda engine takes `now` as a parameter;
//! this is the one place that decides it, so tests can freeze time for the whole server.

use jiff::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The operating system's clock.
    System,
    /// A frozen instant, for tests and reproducible demonstrations.
    Fixed(Timestamp),
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => Timestamp::now(),
            Self::Fixed(at) => *at,
        }
    }
}
