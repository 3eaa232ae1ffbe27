// What the driver contract suite (./driver-contract.ts) needs from a driver
// under test: the driver, a fresh app context per test, a Kubernetes API for
// the use cases, and the few things only the driver's own world can do (put
// files on a disk as a pod would, make a disk outside Kompox, attach a disk
// to a node, list everything it stores). A new cloud driver writes one of
// these over its own fake (see DEVELOPERS.md, "Driver contract suite").
import type { AppContext, AppVolume, Disk } from '../../../src/domain/model.js';
import type { ProviderDriver } from '../../../src/domain/ports/driver.js';
import type { KubeClient } from '../../../src/domain/ports/kube.js';

/** File path (relative to the disk's root) → content. */
export type Files = Record<string, string>;

export interface DriverWorld {
  driver: ProviderDriver;
  /** The Kubernetes API the use cases record the current disk on (the fake API server, or a real cluster). */
  kube: KubeClient;
  /** A context for an app of its own (names are unique per call unless given), optionally placed in zones. */
  app(over?: { app?: string; cluster?: string; zones?: string[]; volumes?: string[] }): AppContext;
  /** Writes files to the disk as a pod using it would. */
  write(disk: Disk, files: Files): Promise<void>;
  /** The disk's files as a pod would read them (regular files only). */
  read(disk: Disk): Promise<Files>;
  /** Makes a disk outside Kompox (no Kompox tags or metadata) holding `files`; returns its native id. */
  foreignDisk(ctx: AppContext, volume: AppVolume, files: Files): Promise<string>;
  /**
   * Attaches the disk to a node, as the CSI controller does for a running
   * pod, and detaches it again. Absent when nothing in the driver's world
   * refuses deleting a disk in use (then only the use case's PV check does).
   */
  attach?(disk: Disk): Promise<() => Promise<void>>;
  /** Zones (node label notation) disks can be put in; empty for drivers without zones. */
  zones: string[];
  /** A disk option the driver honours with a valid and an invalid value, and how to read it back. Absent: no options. */
  option?: { key: string; valid: string; invalid: string; read(disk: Disk): Promise<string | undefined> };
  /** Everything the driver stores, visible or not (paths, resource ids): proves that nothing was left behind. */
  residue(): Promise<string[]>;
  close(): Promise<void>;
}

export interface DriverHarness {
  /** Names the driver in test names. */
  label: string;
  start(): Promise<DriverWorld>;
}
