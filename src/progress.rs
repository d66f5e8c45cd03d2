//! A progress bar on standard error for long file reads, shown only on a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use qof::capture::PacketSource;

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over the input's size, when standard error is a terminal and the size is known.
    pub fn new(source: &dyn PacketSource, stderr_is_terminal: bool) -> Self {
        let bar = match (stderr_is_terminal, source.len_hint()) {
            (true, Some(len)) if len > 0 => {
                let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                Some(bar)
            }
            _ => None,
        };
        Progress { bar }
    }

    pub fn update(&self, source: &dyn PacketSource, frames: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(source.position());
            bar.set_message(format!("{frames} packets"));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
