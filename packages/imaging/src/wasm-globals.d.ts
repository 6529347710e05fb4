/**
 * The part of the WebAssembly JavaScript API this package uses. Node has all of it, but
 * TypeScript declares it only in lib.dom, which a Node package should not pull in.
 */
export {};

declare global {
  namespace WebAssembly {
    class Module {
      constructor(bytes: ArrayBufferView | ArrayBuffer);
    }
    class Instance {
      constructor(module: Module, imports?: object);
      readonly exports: Record<string, unknown>;
    }
    class Memory {
      readonly buffer: ArrayBuffer;
      grow(pages: number): number;
    }
  }
}
