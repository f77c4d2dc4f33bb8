#!/bin/sh
# cart: add and remove one item at a time, check out a non-empty cart.
# (The 30 min abandon timer is not waited for here.)
. "$(dirname "$0")/common"
C=/machine/cart/object/cart-$RUN
req PUT $C/transition/create '{"customer":"c-42"}'
say "cannot check out an empty cart"
req PUT $C/transition/checkout '{"customer":"c-42"}'
req PUT $C/transition/add '{"items":[{"sku":"BOOK-1","qty":1,"price":12.5}]}'
say "add exactly one item"
req PUT $C/transition/add '{"items":[{"sku":"BOOK-1","qty":1,"price":12.5},{"sku":"PEN-2","qty":3,"price":1},{"sku":"INK-3","qty":1,"price":4}]}'
say "a bad sku"
req PUT $C/transition/add '{"items":[{"sku":"BOOK-1","qty":1,"price":12.5},{"sku":"x","qty":1,"price":1}]}'
req PUT $C/transition/add '{"items":[{"sku":"BOOK-1","qty":1,"price":12.5},{"sku":"PEN-2","qty":3,"price":1}]}'
req PUT $C/transition/remove '{"items":[{"sku":"PEN-2","qty":3,"price":1}]}'
say "(a second checkout with the same data would be the same proposal: expect_version makes it a new one)"
req PUT "$C/transition/checkout?expect_version=4" '{"customer":"c-42"}'
say "checked out is final"
req PUT $C/transition/add '{"items":[{"sku":"PEN-2","qty":3,"price":1},{"sku":"INK-3","qty":1,"price":4}]}'
