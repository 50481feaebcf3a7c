// Public surface of @shoal/erofs: erofs metadata images over a layer's tar stream (block mode). Pure.
export { writeErofsImage, type ErofsImage, type ErofsImageInit, type ErofsNode } from "./image-writer.ts";
export { BLOCK_SIZE } from "./format.ts";
