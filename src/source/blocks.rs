//! A reader read on a thread of its own, block by block, for a source that must not block on
//! it: a read of a silent pipe or upstream cannot be woken, but a wait for what that thread
//! hands over can. The thread hands each block over a short queue (bounding what is held in
//! between) and wakes the source's thread; the source waits in [`Channel::wait`], which the
//! server's close also ends. Used by stdin and by a relay's response body.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread;
use std::time::Instant;

use crate::channel::{Channel, Look, Waited};
use crate::wake::Waiter;

/// What the reading thread hands over.
pub enum Block {
    Bytes(Vec<u8>),
    /// The read failed; the thread has ended.
    Failed(io::Error),
    /// The reader ended; so has the thread.
    End,
}

/// The source's end of a reading thread.
pub struct Blocks {
    queue: Receiver<io::Result<Vec<u8>>>,
    /// The source's thread: woken by the reading thread with each block and at its end.
    waiter: Arc<Waiter>,
}

impl Blocks {
    /// Starts a thread named `name` that reads `reader` `read_size` bytes at most at a time,
    /// `queued` blocks ahead of the source at most. Called on the source's thread, the one
    /// that waits for the blocks. The thread ends at the end of `reader`, at an error, or at
    /// its next read once this is dropped.
    pub fn spawn(
        name: &str,
        reader: impl Read + Send + 'static,
        read_size: usize,
        queued: usize,
    ) -> io::Result<Blocks> {
        let (hand, queue) = mpsc::sync_channel(queued);
        let waiter = Waiter::for_current_thread();
        let source = Arc::clone(&waiter);
        thread::Builder::new()
            .name(name.into())
            .spawn(move || read_blocks(reader, read_size, hand, &source))?;
        Ok(Blocks { queue, waiter })
    }

    /// Waits until `until` (None: as long as it takes) for the next block, or until the
    /// server closes.
    pub fn next(&self, channel: &Channel, until: Option<Instant>) -> Waited<Block> {
        channel.wait(&self.waiter, until, |_| match self.queue.try_recv() {
            Ok(Ok(bytes)) => Look::Found(Block::Bytes(bytes)),
            Ok(Err(e)) => Look::Found(Block::Failed(e)),
            Err(TryRecvError::Empty) => Look::Again(None),
            Err(TryRecvError::Disconnected) => Look::Found(Block::End),
        })
    }
}

fn read_blocks(
    mut reader: impl Read,
    read_size: usize,
    hand: SyncSender<io::Result<Vec<u8>>>,
    source: &Waiter,
) {
    let mut buf = vec![0; read_size];
    loop {
        let block = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let failed = block.is_err();
        let handed = hand.send(block).is_ok();
        source.wake();
        if !handed || failed {
            break;
        }
    }
    // Woken again once the queue is closed: woken before, the source could look, find it
    // still open and empty, and wait for a block that never comes.
    drop(hand);
    source.wake();
}
