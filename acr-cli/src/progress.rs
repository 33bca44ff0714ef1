//! Progress bars on a terminal: one per blob in a multi-bar, from the client's progress events.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use acr_client::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use oci_spec_types::Digest;

/// Bars keyed by blob digest (or one "upload" bar for a stream of unknown digest).
pub(crate) struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    /// Bars when standard error is a terminal and progress was not turned off.
    pub(crate) fn for_terminal(no_progress: bool) -> Option<Arc<dyn Progress>> {
        (!no_progress && std::io::stderr().is_terminal()).then(|| {
            Arc::new(Self {
                multi: MultiProgress::new(),
                bars: Mutex::default(),
            }) as Arc<dyn Progress>
        })
    }
}

impl Progress for Bars {
    fn update(&self, digest: Option<&Digest>, done: u64, total: Option<u64>) {
        let key = digest.map_or_else(|| "upload".to_owned(), |d| d.short().to_owned());
        let mut bars = self
            .bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bar = bars.entry(key.clone()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(total.unwrap_or(0)));
            let style = ProgressStyle::with_template(
                "{prefix:12} [{bar:24}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(key);
            bar
        });
        if let Some(total) = total {
            bar.set_length(total);
        }
        bar.set_position(done);
        if total.is_some_and(|t| done >= t) {
            bar.finish();
        }
    }
}
