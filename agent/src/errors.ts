import { ShoalError } from "@shoal/base";

/** The image (or one of its layers) was not converted by `shoal convert`. */
export class NotConvertedError extends ShoalError {
  constructor(image: string, detail: string) {
    super("SHOAL_ERR_NOT_CONVERTED", `${image} is not a shoal lazy image (${detail}); convert it first: shoal convert ${image} DST`);
  }
}
