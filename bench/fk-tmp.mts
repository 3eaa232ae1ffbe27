import { startFakeKube } from '/work/main/test/support/fake-kube/index.js';
import { readFileSync, writeFileSync } from 'node:fs';
const fake = await startFakeKube({ controllers: false });
const y = '/work/memcli/kompoxops.yml';
writeFileSync(y, readFileSync(y, 'utf8').replace(/kubeconfig: [^ ,}]+/, `kubeconfig: ${fake.kubeconfigPath}`));
console.log('ready'); await new Promise((r) => setTimeout(r, 600000));
