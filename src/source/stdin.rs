//! Placeholder: the stdin source is being written.
#![allow(dead_code)]
use crate::channel::Channel;
use crate::http::head::HeaderValue;
use crate::source::Producer;
pub struct StdinSource {
    pub lines: usize,
    pub content_type: Option<HeaderValue>,
    pub max_frame: u64,
}
impl Producer for StdinSource {
    fn run(self: Box<Self>, _channel: &Channel) {}
}
