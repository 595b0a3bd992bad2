//! What a run reports besides Burn's progress display, as values the caller renders: the
//! library prints nothing itself. At the bottom of the crate, so that the logger, the
//! trainer and the search can all send them.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// What a run reports besides Burn's progress display: choices it made and warnings. The
/// library prints nothing itself; [`Training`](crate::Training) hands each event to its handler
/// ([`print_event`] unless [`Training::on_event`](crate::Training::on_event) sets another).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `--backend auto` chose a backend.
    BackendChosen {
        /// Which and why, e.g. `flex (no GPU adapter found)`.
        reason: String,
    },
    /// Fine-tuning loaded pre-trained weights.
    PretrainedLoaded {
        /// The file read.
        source: PathBuf,
        /// What was loaded, missing or re-initialised.
        report: String,
    },
    /// A resume skips a damaged checkpoint.
    DamagedCheckpoint {
        /// Its epoch.
        epoch: usize,
        /// What is wrong with it.
        why: String,
    },
    /// A resume starts from an older checkpoint than the newest (which is damaged).
    ResumingEarlier {
        /// The epoch resumed from.
        epoch: usize,
        /// The newest (damaged) one.
        newest: usize,
    },
    /// A Learner launch continues the run from a checkpoint.
    Resuming {
        /// The run directory.
        run: PathBuf,
        /// The checkpoint's epoch.
        epoch: usize,
    },
    /// The network was initialised from training images before the first step.
    DataInit {
        /// Images it saw.
        images: usize,
        /// Seconds it took.
        seconds: f64,
    },
    /// A fine-tuning phase starts.
    Phase {
        /// Its first epoch.
        first: usize,
        /// Its last epoch.
        last: usize,
        /// Parameters that train.
        trainable: usize,
        /// Values frozen.
        frozen: usize,
    },
    /// Every epoch was trained before the run was killed: only the final weights and the
    /// report are written.
    Finishing {
        /// The epochs trained.
        epochs: usize,
    },
    /// A log (metrics.csv, the diagnostics, Burn's metric files) could not be written; the
    /// run goes on without it.
    LogFailed(String),
}

impl Event {
    /// Whether the event warns of something the user may want to act on.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Event::DamagedCheckpoint { .. } | Event::ResumingEarlier { .. } | Event::LogFailed(_)
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::BackendChosen { reason } => write!(f, "backend auto -> {reason}"),
            Event::PretrainedLoaded { source, report } => {
                write!(f, "loaded {}: {report}", source.display())
            }
            Event::DamagedCheckpoint { epoch, why } => write!(
                f,
                "checkpoint of epoch {epoch} is damaged, not resuming from it ({why})"
            ),
            Event::ResumingEarlier { epoch, newest } => write!(
                f,
                "resuming from epoch {epoch} instead of {newest}; epochs after {epoch} are trained again"
            ),
            Event::Resuming { run, epoch } => {
                write!(f, "resuming {} from epoch {epoch}", run.display())
            }
            Event::DataInit { images, seconds } => write!(
                f,
                "initialised the network from {images} training images in {seconds:.2} s"
            ),
            Event::Phase {
                first,
                last,
                trainable,
                frozen,
            } => write!(
                f,
                "epochs {first}-{last}: {trainable} parameters train, {frozen} frozen"
            ),
            Event::Finishing { epochs } => write!(
                f,
                "all {epochs} epochs trained; writing the final weights and report"
            ),
            Event::LogFailed(why) => f.write_str(why),
        }
    }
}

/// The default event handler, as the `ember` command shows events: warnings on stderr with
/// `warning: `, the rest on stdout.
pub fn print_event(event: &Event) {
    if event.is_warning() {
        eprintln!("warning: {event}");
    } else {
        println!("{event}");
    }
}

/// An event handler, shared with the threads a run starts.
#[derive(Clone)]
pub struct Events {
    handler: Arc<dyn Fn(&Event) + Send + Sync>,
    /// No events and no progress display (dashboard or lines) at all.
    silent: bool,
}

impl Default for Events {
    /// [`print_event`].
    fn default() -> Self {
        Self::new(print_event)
    }
}

impl Events {
    /// A handler of its own.
    pub fn new(handler: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        Self {
            handler: Arc::new(handler),
            silent: false,
        }
    }

    /// Nothing shown: no events, and no dashboard or progress lines either (a trial that
    /// another rank of a search reports on).
    pub fn silent() -> Self {
        Self {
            handler: Arc::new(|_| {}),
            silent: true,
        }
    }

    /// Whether this is [`Events::silent`].
    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// Hands `event` to the handler.
    pub fn emit(&self, event: Event) {
        (self.handler)(&event)
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Events")
    }
}
