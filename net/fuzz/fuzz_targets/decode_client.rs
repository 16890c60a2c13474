//! Any bytes a client sends must decode to a command or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tessera_net::codec::decode_client(data);
    let _ = tessera_net::codec::decode_server(data);
});
