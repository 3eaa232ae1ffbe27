// The in-memory reference block-storage driver (a cloud driver's shape over
// an in-memory cloud) and its cloud. See driver.ts.
export { ReferenceCloud, CloudError, type CloudDisk, type CloudSnapshot } from './cloud.js';
export { referenceDriver, RESOURCE_GROUP_SETTING, SKU_OPTION, type ReferenceDriverOptions } from './driver.js';
export { referenceVolumes, REFERENCE_CSI_DRIVER, DEFAULT_SKU } from './volume.js';
