//! Placeholder: the relay source is being written.
#![allow(dead_code)]
use crate::channel::Channel;
use crate::source::Producer;
use std::time::Duration;
pub struct RelaySource {
    url: String,
}
impl RelaySource {
    pub fn new(
        url: &str,
        _poll: Duration,
        _keepalive: Duration,
        _max_frame: u64,
        _once: bool,
    ) -> Result<RelaySource, String> {
        Ok(RelaySource {
            url: url.to_string(),
        })
    }
    pub fn display_url(&self) -> String {
        self.url.clone()
    }
    pub fn host(&self) -> String {
        "relay".into()
    }
}
impl Producer for RelaySource {
    fn run(self: Box<Self>, _channel: &Channel) {}
}
