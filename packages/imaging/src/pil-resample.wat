;; The two passes of Pillow's 8-bit resampling (libImaging/Resample.c, ImagingResampleHorizontal_8bpc
;; and ImagingResampleVertical_8bpc) in WebAssembly SIMD: the same fixed-point sums, rounded and
;; clipped the same way, so the bytes are Pillow's. pil-resample.ts computes the taps and lays out
;; memory; see it for the layout and the padding these loops rely on.
;;
;; Each sum starts at 1 << 21 (Pillow's rounding half), adds pixel × weight in wrapping i32
;; arithmetic, is shifted right by 22 (PRECISION_BITS) and clipped to 0…255: the two saturating
;; narrows (i32 → i16 → u8) are exactly Pillow's clip8.
(module
  (memory (export "memory") 1)

  ;; Horizontal pass over `rows` rows of interleaved RGB. Output pixel x of a row is the sum over
  ;; its taps t < counts[x] of src[starts[x] + t] × weights[x × size + t], for R, G and B at once:
  ;; a tap loads 4 bytes (RGB and the next pixel's R, whose lane is ignored) and the pixel is
  ;; stored as 4 bytes, the fourth overwritten by the next pixel (the last one's lands in padding
  ;; or in the next row, written later).
  (func (export "horizontal")
    (param $src i32) (param $srcStride i32) (param $rows i32)
    (param $dst i32) (param $width i32)
    (param $starts i32) (param $counts i32) (param $weights i32) (param $size i32)
    (local $y i32) (local $x i32) (local $row i32) (local $p i32) (local $w i32) (local $wEnd i32)
    (local $acc v128)
    (local.set $y (i32.const 0))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $rows)))
        (local.set $row (i32.add (local.get $src) (i32.mul (local.get $y) (local.get $srcStride))))
        (local.set $x (i32.const 0))
        (block $colsDone
          (loop $colLoop
            (br_if $colsDone (i32.ge_u (local.get $x) (local.get $width)))
            (local.set $p (i32.add (local.get $row)
              (i32.mul (i32.load (i32.add (local.get $starts) (i32.shl (local.get $x) (i32.const 2)))) (i32.const 3))))
            (local.set $w (i32.add (local.get $weights) (i32.shl (i32.mul (local.get $x) (local.get $size)) (i32.const 2))))
            (local.set $wEnd (i32.add (local.get $w)
              (i32.shl (i32.load (i32.add (local.get $counts) (i32.shl (local.get $x) (i32.const 2)))) (i32.const 2))))
            (local.set $acc (i32x4.splat (i32.const 2097152)))
            (block $tapsDone
              (loop $tapLoop
                (br_if $tapsDone (i32.ge_u (local.get $w) (local.get $wEnd)))
                (local.set $acc (i32x4.add (local.get $acc)
                  (i32x4.mul
                    (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero (local.get $p))))
                    (i32x4.splat (i32.load (local.get $w))))))
                (local.set $p (i32.add (local.get $p) (i32.const 3)))
                (local.set $w (i32.add (local.get $w) (i32.const 4)))
                (br $tapLoop)))
            (v128.store32_lane 0 (local.get $dst)
              (i8x16.narrow_i16x8_u
                (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $acc) (i32.const 22)) (local.get $acc))
                (local.get $acc)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 3)))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (br $colLoop)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rowLoop))))

  ;; Vertical pass: output row y is the sum over its taps t < counts[y] of rows starts[y] + t of
  ;; `src` (rows of `stride` bytes) × weights[y × size + t], 16 bytes (any channels) at a time.
  ;; The last block of a row may reach past it: it reads the next row or padding and writes
  ;; into the next output row (written later) or padding.
  (func (export "vertical")
    (param $src i32) (param $stride i32)
    (param $dst i32) (param $height i32)
    (param $starts i32) (param $counts i32) (param $weights i32) (param $size i32)
    (local $y i32) (local $c i32) (local $top i32) (local $p i32) (local $w i32) (local $wEnd i32)
    (local $wFirst i32) (local $out i32)
    (local $v v128) (local $lo v128) (local $hi v128) (local $k v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $y (i32.const 0))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $height)))
        (local.set $top (i32.add (local.get $src)
          (i32.mul (i32.load (i32.add (local.get $starts) (i32.shl (local.get $y) (i32.const 2)))) (local.get $stride))))
        (local.set $wFirst (i32.add (local.get $weights) (i32.shl (i32.mul (local.get $y) (local.get $size)) (i32.const 2))))
        (local.set $wEnd (i32.add (local.get $wFirst)
          (i32.shl (i32.load (i32.add (local.get $counts) (i32.shl (local.get $y) (i32.const 2)))) (i32.const 2))))
        (local.set $out (i32.add (local.get $dst) (i32.mul (local.get $y) (local.get $stride))))
        (local.set $c (i32.const 0))
        (block $colsDone
          (loop $colLoop
            (br_if $colsDone (i32.ge_u (local.get $c) (local.get $stride)))
            (local.set $a0 (i32x4.splat (i32.const 2097152)))
            (local.set $a1 (local.get $a0))
            (local.set $a2 (local.get $a0))
            (local.set $a3 (local.get $a0))
            (local.set $p (i32.add (local.get $top) (local.get $c)))
            (local.set $w (local.get $wFirst))
            (block $tapsDone
              (loop $tapLoop
                (br_if $tapsDone (i32.ge_u (local.get $w) (local.get $wEnd)))
                (local.set $v (v128.load (local.get $p)))
                (local.set $k (i32x4.splat (i32.load (local.get $w))))
                (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
                (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
                (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $k))))
                (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $k))))
                (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $k))))
                (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $k))))
                (local.set $p (i32.add (local.get $p) (local.get $stride)))
                (local.set $w (i32.add (local.get $w) (i32.const 4)))
                (br $tapLoop)))
            (v128.store (i32.add (local.get $out) (local.get $c))
              (i8x16.narrow_i16x8_u
                (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a0) (i32.const 22)) (i32x4.shr_s (local.get $a1) (i32.const 22)))
                (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a2) (i32.const 22)) (i32x4.shr_s (local.get $a3) (i32.const 22)))))
            (local.set $c (i32.add (local.get $c) (i32.const 16)))
            (br $colLoop)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rowLoop))))
)
