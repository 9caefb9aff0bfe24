// QEMU guests under TCG need the machine's cores: test classes run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
