//! File operations where someone else controls the directory.
//!
//! tenantry runs as root and writes into homes its tenants control: any
//! name there may be a link, a FIFO or a hard link to a root file, and may
//! change between a check and a use. This crate owns every such operation,
//! so the rules live in one audited place:
//!
//! - Directories are opened one component at a time with
//!   `O_DIRECTORY|O_NOFOLLOW`, from a trusted anchor down (the host's root,
//!   then root-owned directories such as the homes' parent), and every later
//!   operation is relative to the verified handle (`openat`, `mkdirat`,
//!   `renameat`, `symlinkat`, `unlinkat`): a link swapped in after a check is
//!   never followed.
//! - Files are created under random names with `O_CREAT|O_EXCL|O_NOFOLLOW`,
//!   get their owner and mode on the open descriptor (`fchown`, `fchmod`),
//!   are fsynced and renamed into place relative to the handle, and the
//!   directory is fsynced ([`Dir::write_file`], and [`AtomicWriter`] for
//!   tenantry's own directories).
//! - Reads ([`Dir::read_file`]) accept only a regular file of the expected
//!   owner, opened with `O_NOFOLLOW|O_NONBLOCK|O_NOCTTY`, and never read past
//!   a size limit: a FIFO cannot hang a run, `/dev/zero` cannot exhaust memory.
//! - New directories get owner and mode on their own descriptor, and only
//!   when they are still the root-owned directory just made.
//!
//! No `unsafe`: the system calls come from `rustix`.

mod atomic;
mod dir;
mod error;
mod write;

pub use atomic::{AtomicWriter, sweep_stale_temp_files};
pub use dir::{Dir, EntryInfo, EntryKind, Ids, ReadRules};
pub use error::{Error, Refusal, Result};
pub use write::{TEMP_PREFIX, WriteOptions, Written};
