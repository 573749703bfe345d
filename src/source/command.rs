//! Placeholder: the command source is being written.
#![allow(dead_code)]
use crate::channel::Channel;
use crate::http::head::HeaderValue;
use crate::source::Producer;
use std::time::Duration;
pub struct CommandSource {
    pub command: String,
    pub poll: Duration,
    pub content_type: Option<HeaderValue>,
    pub max_frame: u64,
    pub once: bool,
}
impl Producer for CommandSource {
    fn run(self: Box<Self>, _channel: &Channel) {}
}
pub fn first_word(command: &str) -> &str {
    command.split_whitespace().next().unwrap_or("command")
}
