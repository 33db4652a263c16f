//! Hand-assembled guests that pin down what the VMM does with one instruction at a time.

mod common;

use std::time::Duration;

use common::{run_with_timeout, stderr, stdout, tiny_elf, vmm};

/// Writes "K" to COM1, then executes `ud2` with no IDT: a triple fault.
const USER_UD2: &[u8] = &[
    0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8      ; COM1 transmit
    0xb0, 0x4b, //             mov al, 'K'
    0xee, //                   out dx, al
    0x0f, 0x0b, //             ud2                ; #UD, no IDT -> triple fault
];

/// Powers off through the paravirtual port with status 5.
const POWER_OFF_5: &[u8] = &[
    0x66, 0xba, 0x00, 0x07, // mov dx, 0x700      ; power-off port
    0xb8, 0x05, 0x00, 0x00, 0x00, // mov eax, 5   ; status
    0xef, //                   out dx, eax
    0xeb, 0xfe, //             jmp $              ; never reached
];

/// Reads the i8042 status, then asks the controller to pulse the reset line.
const I8042_RESET: &[u8] = &[
    0xe4, 0x64, //             in al, 0x64        ; status register
    0xb0, 0xfe, //             mov al, 0xfe       ; "pulse reset line"
    0xe6, 0x64, //             out 0x64, al
    0xeb, 0xfe, //             jmp $              ; the VM ends before this spins long
];

/// Copies guest memory to COM1: the RSDP signature at 0xe0000, the zero page's
/// `acpi_rsdp_addr` (0x7000 + 0x70) and the SMBIOS anchor at 0xf8000; then powers off.
const DUMP_FIRMWARE_TABLES: &[u8] = &[
    0x66, 0xba, 0xf8, 0x03, //       mov dx, 0x3f8          ; COM1 transmit
    0xbe, 0x00, 0x00, 0x0e, 0x00, // mov esi, 0xe0000       ; the RSDP
    0xb9, 0x08, 0x00, 0x00, 0x00, // mov ecx, 8
    0xac, //                         lodsb                  ; al = [rsi++]
    0xee, //                         out dx, al
    0xe2, 0xfc, //                   loop -4                ; rcx times
    0xbe, 0x70, 0x70, 0x00, 0x00, // mov esi, 0x7070        ; boot_params.acpi_rsdp_addr
    0xb9, 0x08, 0x00, 0x00, 0x00, // mov ecx, 8
    0xac, 0xee, 0xe2, 0xfc, //       lodsb; out dx, al; loop
    0xbe, 0x00, 0x80, 0x0f, 0x00, // mov esi, 0xf8000       ; the SMBIOS entry point
    0xb9, 0x04, 0x00, 0x00, 0x00, // mov ecx, 4
    0xac, 0xee, 0xe2, 0xfc, //       lodsb; out dx, al; loop
    0x66, 0xba, 0x00, 0x07, //       mov dx, 0x700          ; power off
    0x31, 0xc0, //                   xor eax, eax
    0xef, //                         out dx, eax
    0xeb, 0xfe, //                   jmp $
];

/// Boots `code` as a 16 MiB guest (user mode when `user_note`), with `extra` flags.
fn boot(code: &[u8], user_note: bool, extra: &[&str]) -> std::process::Output {
    let elf = tiny_elf(code, 0x20_0000, user_note);
    run_with_timeout(
        vmm()
            .arg("--kernel")
            .arg(elf.path())
            .args(["--mem-mib", "16"])
            .args(extra),
        Duration::from_secs(30),
    )
}

#[test]
fn a_guest_triple_fault_is_a_clear_failure() {
    let out = boot(USER_UD2, true, &[]);
    assert_eq!(
        stdout(&out),
        "K",
        "the byte written before the fault reaches the console"
    );
    assert_eq!(out.status.code(), Some(2));
    let log = stderr(&out);
    assert!(log.contains("triple-faulted"), "{log}");
    assert!(
        log.contains("rip 0x200007"),
        "names the faulting instruction: {log}"
    );
}

#[test]
fn user_note_and_power_off_port_work_in_both_modes() {
    for user in [true, false] {
        let out = boot(POWER_OFF_5, user, &[]);
        let log = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{log}");
        assert!(log.contains("guest powered off (status 5)"), "{log}");
        let mode = if user { "user entry" } else { "kernel entry" };
        assert!(log.contains(mode), "the image's note picks the mode: {log}");
    }
}

#[test]
fn entry_flag_overrides_the_image() {
    let out = boot(POWER_OFF_5, false, &["--entry", "user"]);
    assert!(stderr(&out).contains("user entry"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn i8042_reset_ends_the_vm_cleanly() {
    let out = boot(I8042_RESET, true, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("vmm: exit: guest requested a reset"));
}

#[test]
fn acpi_and_smbios_tables_are_where_the_guest_looks() {
    let out = boot(DUMP_FIRMWARE_TABLES, true, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut expected = b"RSD PTR ".to_vec();
    expected.extend(0xe0000u64.to_le_bytes());
    expected.extend(b"_SM_");
    assert_eq!(out.stdout, expected, "{}", stderr(&out));
}
