//! Loading what the guest boots: the kernel (ELF or bzImage), the initrd and the command line.

pub mod elf_note;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::{BzImage, Elf, KernelLoader};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::arch::x86_64::layout::{CMDLINE_START, HIMEM_START, MMIO_GAP_START};
use crate::arch::x86_64::regs::EntryMode;

/// Offset of a bzImage's 64-bit entry point from where its protected-mode code is loaded.
const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;
/// `xloadflags` bit: the kernel has a 64-bit entry point.
const XLF_KERNEL_64: u16 = 1 << 0;
const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
/// "HdrS" at offset 0x202 marks a bzImage.
const BZIMAGE_MAGIC_OFFSET: u64 = 0x202;
const PAGE_SIZE: u64 = 4096;

/// Why the kernel, initrd or command line could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("cannot read {what} {path}")]
    Read {
        /// "kernel" or "initrd".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The kernel file is neither an ELF nor a bzImage.
    #[error("kernel {0} is not an ELF image nor a bzImage")]
    NotAKernel(PathBuf),
    /// The ELF could not be loaded.
    #[error("kernel {path} is not a loadable x86_64 ELF")]
    Elf {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: linux_loader::loader::Error,
    },
    /// The bzImage could not be loaded.
    #[error("kernel {path} is not a loadable bzImage")]
    BzImage {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: linux_loader::loader::Error,
    },
    /// The bzImage has no 64-bit entry point.
    #[error("kernel {0} is a bzImage without a 64-bit entry point")]
    Not64Bit(PathBuf),
    /// The initrd does not fit between the kernel and the top of low memory.
    #[error(
        "initrd of {size} bytes does not fit in guest memory above the kernel ({room} bytes free)"
    )]
    InitrdTooLarge {
        /// The initrd's size.
        size: u64,
        /// The room there is.
        room: u64,
    },
    /// A bzImage needs more memory to decompress itself than the VM has.
    #[error("this bzImage needs at least {need_mib} MiB of guest memory to decompress itself")]
    TooLittleMemory {
        /// What it needs, in MiB.
        need_mib: u64,
    },
    /// Guest memory could not be written.
    #[error("cannot write the {0} into guest memory")]
    GuestMemory(&'static str, #[source] vm_memory::GuestMemoryError),
}

/// A kernel in guest memory.
#[derive(Debug, Clone)]
pub struct LoadedKernel {
    /// The first instruction.
    pub entry: u64,
    /// One past the highest byte the kernel occupies.
    pub end: u64,
    /// The entry mode the image asks for through its note, if any.
    pub requested_mode: Option<EntryMode>,
    /// A bzImage's setup header, for the zero page.
    pub setup_header: Option<setup_header>,
}

fn open(what: &'static str, path: &Path) -> Result<File, LoadError> {
    File::open(path).map_err(|source| LoadError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Which kind of kernel image a file holds.
#[derive(Debug, PartialEq, Eq)]
enum ImageKind {
    Elf,
    BzImage,
}

fn image_kind(file: &mut File) -> std::io::Result<Option<ImageKind>> {
    let mut magic = [0u8; 4];
    file.seek(SeekFrom::Start(0))?;
    if file.read_exact(&mut magic).is_ok() && magic == ELF_MAGIC {
        return Ok(Some(ImageKind::Elf));
    }
    file.seek(SeekFrom::Start(BZIMAGE_MAGIC_OFFSET))?;
    if file.read_exact(&mut magic).is_ok() && &magic == b"HdrS" {
        return Ok(Some(ImageKind::BzImage));
    }
    Ok(None)
}

/// Loads the kernel at `path` into `memory`.
pub fn load_kernel(memory: &GuestMemoryMmap, path: &Path) -> Result<LoadedKernel, LoadError> {
    let mut file = open("kernel", path)?;
    let read_err = |source| LoadError::Read {
        what: "kernel",
        path: path.to_owned(),
        source,
    };
    let kind = image_kind(&mut file).map_err(read_err)?;
    file.seek(SeekFrom::Start(0)).map_err(read_err)?;
    match kind {
        Some(ImageKind::Elf) => {
            let requested_mode = elf_note::entry_mode_of(&mut file).map_err(read_err)?;
            file.seek(SeekFrom::Start(0)).map_err(read_err)?;
            let result = Elf::load(memory, None, &mut file, Some(GuestAddress(HIMEM_START)))
                .map_err(|source| LoadError::Elf {
                    path: path.to_owned(),
                    source,
                })?;
            Ok(LoadedKernel {
                entry: result.kernel_load.0,
                end: result.kernel_end,
                requested_mode,
                setup_header: None,
            })
        }
        Some(ImageKind::BzImage) => {
            let result = BzImage::load(memory, None, &mut file, Some(GuestAddress(HIMEM_START)))
                .map_err(|source| LoadError::BzImage {
                    path: path.to_owned(),
                    source,
                })?;
            let header = result
                .setup_header
                .ok_or_else(|| LoadError::Not64Bit(path.to_owned()))?;
            if header.xloadflags & XLF_KERNEL_64 == 0 {
                return Err(LoadError::Not64Bit(path.to_owned()));
            }
            Ok(LoadedKernel {
                entry: result.kernel_load.0 + BZIMAGE_64BIT_ENTRY_OFFSET,
                end: result.kernel_end,
                requested_mode: None,
                setup_header: Some(header),
            })
        }
        None => Err(LoadError::NotAKernel(path.to_owned())),
    }
}

/// Checks that a bzImage can decompress itself in `mem_size` bytes: it runs at its preferred
/// address (16 MiB on x86_64) and needs `init_size` bytes from there.
pub fn check_memory(kernel: &LoadedKernel, mem_size: u64) -> Result<(), LoadError> {
    let Some(header) = kernel.setup_header else {
        return Ok(());
    };
    let need = header.pref_address.max(HIMEM_START) + u64::from(header.init_size);
    if need > mem_size.min(MMIO_GAP_START) {
        return Err(LoadError::TooLittleMemory {
            need_mib: need.div_ceil(1 << 20),
        });
    }
    Ok(())
}

/// Where an initrd of `size` bytes goes: the highest page-aligned place below the top of low
/// memory (and below `addr_max`), above `kernel_end`.
pub fn initrd_placement(
    size: u64,
    kernel_end: u64,
    mem_size: u64,
    addr_max: u64,
) -> Result<u64, LoadError> {
    let top = mem_size.min(MMIO_GAP_START).min(addr_max.saturating_add(1));
    let floor = kernel_end.next_multiple_of(PAGE_SIZE);
    let room = top.saturating_sub(floor);
    if size > room {
        return Err(LoadError::InitrdTooLarge { size, room });
    }
    Ok((top - size) / PAGE_SIZE * PAGE_SIZE)
}

/// Loads the initrd at `path`; returns its guest address and size.
pub fn load_initrd(
    memory: &GuestMemoryMmap,
    path: &Path,
    kernel: &LoadedKernel,
    mem_size: u64,
) -> Result<(u64, u64), LoadError> {
    let mut data = Vec::new();
    open("initrd", path)?
        .read_to_end(&mut data)
        .map_err(|source| LoadError::Read {
            what: "initrd",
            path: path.to_owned(),
            source,
        })?;
    let addr_max = kernel
        .setup_header
        .map(|h| u64::from(h.initrd_addr_max))
        .filter(|max| *max != 0)
        .unwrap_or(u64::from(u32::MAX));
    let size = data.len() as u64;
    let addr = initrd_placement(size, kernel.end, mem_size, addr_max)?;
    memory
        .write_slice(&data, GuestAddress(addr))
        .map_err(|e| LoadError::GuestMemory("initrd", e))?;
    Ok((addr, size))
}

/// Writes the NUL-terminated command line at `CMDLINE_START`; returns its size with the NUL.
pub fn load_cmdline(memory: &GuestMemoryMmap, cmdline: &str) -> Result<usize, LoadError> {
    let mut bytes = cmdline.as_bytes().to_vec();
    bytes.push(0);
    memory
        .write_slice(&bytes, GuestAddress(CMDLINE_START))
        .map_err(|e| LoadError::GuestMemory("command line", e))?;
    Ok(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::x86_64::layout::MIB;
    use crate::kvm::memory::create_guest_memory;
    use std::io::Write;

    #[test]
    fn initrd_goes_high_and_page_aligned() {
        let addr = initrd_placement(10_000, 2 * MIB, 64 * MIB, u64::from(u32::MAX)).unwrap();
        assert_eq!(addr % PAGE_SIZE, 0);
        assert!(addr + 10_000 <= 64 * MIB);
        assert!(addr >= 64 * MIB - 3 * PAGE_SIZE);
    }

    #[test]
    fn initrd_respects_addr_max_and_kernel() {
        let addr = initrd_placement(4096, 2 * MIB, 512 * MIB, 0x37ff_ffff).unwrap();
        assert!(addr + 4096 <= 0x3800_0000);
        let err = initrd_placement(63 * MIB, 2 * MIB, 64 * MIB, u64::MAX).unwrap_err();
        assert!(matches!(err, LoadError::InitrdTooLarge { .. }), "{err}");
    }

    #[test]
    fn bzimage_memory_need_is_checked() {
        let header = setup_header {
            pref_address: 0x100_0000,
            init_size: 0x300_0000,
            ..Default::default()
        };
        let kernel = LoadedKernel {
            entry: 0x100_200,
            end: 0x200_0000,
            requested_mode: None,
            setup_header: Some(header),
        };
        assert!(check_memory(&kernel, 64 * MIB).is_ok());
        let err = check_memory(&kernel, 32 * MIB).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this bzImage needs at least 64 MiB of guest memory to decompress itself"
        );
    }

    #[test]
    fn rejects_files_that_are_not_kernels() {
        let mem = create_guest_memory(16 * MIB).unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&[0x55; 4096]).unwrap();
        let err = load_kernel(&mem, file.path()).unwrap_err();
        assert!(matches!(err, LoadError::NotAKernel(_)), "{err}");
        assert!(err.to_string().contains("not an ELF image nor a bzImage"));
    }

    #[test]
    fn rejects_a_broken_elf() {
        let mem = create_guest_memory(16 * MIB).unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let mut bytes = vec![0u8; 128];
        bytes[..4].copy_from_slice(&ELF_MAGIC);
        file.write_all(&bytes).unwrap();
        let err = load_kernel(&mem, file.path()).unwrap_err();
        assert!(matches!(err, LoadError::Elf { .. }), "{err}");
    }

    #[test]
    fn cmdline_is_nul_terminated() {
        let mem = create_guest_memory(16 * MIB).unwrap();
        assert_eq!(load_cmdline(&mem, "console=ttyS0").unwrap(), 14);
        let mut buf = [0u8; 14];
        mem.read_slice(&mut buf, GuestAddress(CMDLINE_START))
            .unwrap();
        assert_eq!(&buf, b"console=ttyS0\0");
    }
}
