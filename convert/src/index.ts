// Public surface of @shoal/convert: turning an image in a registry into a lazy image.
export { convertImage, type ConvertImageInit, type ConvertImageResult, type ImageEndpoint, type Progress } from "./convert-image.ts";
