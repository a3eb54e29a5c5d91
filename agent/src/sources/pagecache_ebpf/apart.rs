//! Loading the probe in a short-lived child process. aya's loader parses
//! the kernel's BTF whether it is used or not (about 20 MiB at the peak),
//! and a peak stays in the agent's high-water mark for good even once freed.
//! The child, forked while the agent still has one thread, loads and
//! attaches the program, hands the agent the descriptors of its maps and
//! attachments over a socket (`SCM_RIGHTS`), and exits; the kernel keeps
//! the program attached as long as the agent holds them.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use super::{PageCacheProbe, ProbeError};

/// More than the maps, programs, links and perf events of the probe.
const MOST_DESCRIPTORS: usize = 32;

fn failed(what: &str, e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Refused(format!("{what}: {e}"))
}

impl PageCacheProbe {
    /// [`PageCacheProbe::attach`] in a child process, so that the agent's
    /// peak memory is not the loader's.
    ///
    /// Call it while the process has a single thread (before the runtime
    /// starts): the child of a fork has only the forking thread, and any
    /// lock another thread held would stay held in it.
    pub fn attach_apart() -> Result<Self, ProbeError> {
        let (ours, theirs) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| failed("socketpair", e))?;
        // SAFETY: the caller guarantees one thread; the child attaches,
        // sends and leaves with _exit, running no destructor of the parent's.
        match unsafe { libc::fork() } {
            -1 => Err(failed("fork", std::io::Error::last_os_error())),
            0 => {
                drop(ours);
                let outcome = PageCacheProbe::attach();
                let descriptors = if outcome.is_ok() {
                    bpf_descriptors()
                } else {
                    Vec::new()
                };
                let said = serde_json::to_vec(&outcome.as_ref().map(drop).map_err(Clone::clone))
                    .unwrap_or_default();
                let borrowed: Vec<BorrowedFd<'_>> = descriptors.iter().map(AsFd::as_fd).collect();
                let mut space =
                    [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MOST_DESCRIPTORS))];
                let mut control = SendAncillaryBuffer::new(&mut space);
                control.push(SendAncillaryMessage::ScmRights(&borrowed));
                let _ = sendmsg(
                    &theirs,
                    &[IoSlice::new(&said)],
                    &mut control,
                    SendFlags::empty(),
                );
                // Detaching here would detach what the agent now holds.
                std::mem::forget(outcome);
                // SAFETY: ends the child at once, as a forked child must.
                unsafe { libc::_exit(0) }
            }
            child => {
                drop(theirs);
                let received = receive(&ours);
                // SAFETY: reaps our own child; a null status pointer is allowed.
                unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
                let (said, descriptors) = received?;
                let outcome: Result<(), ProbeError> = serde_json::from_slice(&said)
                    .map_err(|e| failed("the loading process said nothing readable", e))?;
                outcome?;
                PageCacheProbe::from_descriptors(descriptors)
            }
        }
    }
}

/// The child's message and the descriptors that came with it.
fn receive(socket: &OwnedFd) -> Result<(Vec<u8>, Vec<OwnedFd>), ProbeError> {
    let mut said = vec![0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MOST_DESCRIPTORS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let message = recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut said)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| failed("receiving from the loading process", e))?;
    let descriptors = control
        .drain()
        .flat_map(|message| match message {
            RecvAncillaryMessage::ScmRights(rights) => rights.collect(),
            _ => Vec::new(),
        })
        .collect();
    said.truncate(message.bytes);
    Ok((said, descriptors))
}

/// This process's eBPF maps, programs and links and its perf events: what
/// the probe holds once attached.
fn bpf_descriptors() -> Vec<OwnedFd> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path()).is_ok_and(|target| {
                let target = target.to_string_lossy();
                // bpf-map, bpf-prog, bpf_link (the kernel's names), perf events.
                target.starts_with("anon_inode:bpf") || target == "anon_inode:[perf_event]"
            })
        })
        .filter_map(|entry| entry.file_name().to_str()?.parse::<RawFd>().ok())
        // SAFETY: the descriptor is open (listed just now) and stays open
        // while it is borrowed to be duplicated.
        .filter_map(|fd| {
            unsafe { BorrowedFd::borrow_raw(fd) }
                .try_clone_to_owned()
                .ok()
        })
        .collect()
}
