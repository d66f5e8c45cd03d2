//! Classic BPF filtering with libpcap's compiler.
