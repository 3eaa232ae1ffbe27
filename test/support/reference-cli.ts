// `kompoxops` from the sources with the reference node pools in place of the
// `aks` driver, for CLI tests of commands no built-in driver implements yet
// (cluster nodepool). Run as: node --import tsx test/support/reference-cli.ts ARGS
// The pools are kept in the JSON file KOMPOX_TEST_NODEPOOLS_STATE, so that
// one test's separate CLI runs see the same pools. Everything else is the
// real program: commander, the composition root (kompoxops.yml, repositories,
// the session that loads and always closes the driver), the use cases.
import { overrideDriverForTests } from '../../src/providers/index.js';
import { main } from '../../src/cli/kompoxops/main.js';
import { ReferenceNodePools, referenceNodePoolsDriver } from './reference-nodepools.js';

const stateFile = process.env.KOMPOX_TEST_NODEPOOLS_STATE;
const pools = new ReferenceNodePools(stateFile ? { stateFile } : {});
overrideDriverForTests('aks', (host) => referenceNodePoolsDriver(pools, host));
await main(process.argv);
